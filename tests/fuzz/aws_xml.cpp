// The AWS XML helpers over response bodies (S3, STS, SNS, SES answers, which a proxy or a
// fake endpoint can shape). Invariants: an element's inner text is a piece of the input;
// decoding never grows text (entities are longer than what they stand for) and gives
// back what xml_escape wrote; escaped text holds no markup.
// The input's first line is the element name; the rest is the document.

#include <string>

#include "fuzz_support.hpp"
#include "tattle/aws/xml.hpp"

namespace {

using tattle::fuzz::require;

bool within(std::string_view part, std::string_view whole) {
    return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input = tattle::fuzz::as_text(data, size);
    const auto parts = tattle::fuzz::split(input, '\n', 2);
    const std::string_view name = parts[0];
    const std::string_view document = parts.size() > 1 ? parts[1] : std::string_view();

    if (const auto inner = tattle::aws::xml_inner(document, name)) {
        require(within(*inner, document), "xml_inner points outside the document", input);
    }
    for (const std::string_view inner : tattle::aws::xml_inner_all(document, name)) {
        require(within(inner, document), "xml_inner_all points outside the document", input);
    }
    if (const auto text = tattle::aws::xml_text(document, name)) {
        require(text->size() <= document.size(), "decoded text longer than the document", input);
    }
    const std::string decoded = tattle::aws::xml_unescape(document);
    require(decoded.size() <= document.size(), "xml_unescape made text longer", input);

    const std::string escaped = tattle::aws::xml_escape(document);
    require(escaped.find_first_of("<>\"'") == std::string::npos, "xml_escape left markup", input);
    require(tattle::aws::xml_unescape(escaped) == document, "xml_unescape(xml_escape(x)) is not x", input);
    return 0;
}
