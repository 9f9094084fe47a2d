#include "crew/detail/callable.hpp"

namespace crew::detail {

void invoke_call(Reader& call, Writer& result) {
    auto entry = reinterpret_cast<EntryPoint>(resolve_entry_point(decode<CodeAddress>(call)));
    entry(call, result);
}

}  // namespace crew::detail
