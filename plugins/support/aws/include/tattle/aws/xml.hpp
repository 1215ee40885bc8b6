#pragma once

// Just enough XML for the fixed response shapes of the AWS REST-XML and Query protocols
// (S3, STS, SNS, SES): the text of a named element, and the list of repeated elements.
// Not a general XML parser: no namespaces prefixes, CDATA or comments are interpreted.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tattle::aws {

// The raw inner text of the first <name>…</name> element (nested markup included), or
// nullopt. <name/> gives an empty view.
std::optional<std::string_view> xml_inner(std::string_view xml, std::string_view name);
// The same with the five predefined entities and character references decoded.
std::optional<std::string> xml_text(std::string_view xml, std::string_view name);
// The raw inner text of every <name>…</name> element at any depth, in document order
// (ListObjectsV2's <Contents>, for one).
std::vector<std::string_view> xml_inner_all(std::string_view xml, std::string_view name);
// Entities and character references decoded.
std::string xml_unescape(std::string_view text);
// The five predefined entities escaped (text and attribute values).
std::string xml_escape(std::string_view text);

}  // namespace tattle::aws
