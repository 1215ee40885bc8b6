#pragma once

#include "libjq.hpp"

#include <utility>

namespace tattle {

// Owns one jv reference. Almost every jv_* function consumes its arguments, so
// callers hand over copy() or release(), never the same reference twice.
class OwnedJv {
public:
    explicit OwnedJv(jv value) noexcept : value_(value) {}
    ~OwnedJv() { jv_free(value_); }
    OwnedJv(const OwnedJv&) = delete;
    OwnedJv& operator=(const OwnedJv&) = delete;
    OwnedJv(OwnedJv&& other) noexcept : value_(std::exchange(other.value_, jv_invalid())) {}
    OwnedJv& operator=(OwnedJv&& other) noexcept {
        if (this != &other) {
            jv_free(value_);
            value_ = std::exchange(other.value_, jv_invalid());
        }
        return *this;
    }

    // For the few jv_* functions that only look (jv_get_kind, jv_string_value, ...).
    jv borrow() const noexcept { return value_; }
    jv copy() const noexcept { return jv_copy(value_); }
    jv release() noexcept { return std::exchange(value_, jv_invalid()); }
    jv_kind kind() const noexcept { return jv_get_kind(value_); }

private:
    jv value_;
};

}  // namespace tattle
