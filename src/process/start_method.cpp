#include "crew/start_method.hpp"

#include <atomic>

namespace crew {
namespace {
std::atomic<StartMethod> default_method{StartMethod::forkserver};
}

void set_start_method(StartMethod method) {
    default_method.store(method);
}

StartMethod get_start_method() {
    return default_method.load();
}

std::string_view to_string(StartMethod method) {
    switch (method) {
        case StartMethod::forkserver:
            return "forkserver";
        case StartMethod::fork:
            return "fork";
        case StartMethod::spawn:
            return "spawn";
    }
    return "unknown";
}

}  // namespace crew
