#include "crew/remote_exception.hpp"

#include <unistd.h>

#include <cstdint>
#include <future>
#include <ios>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <unordered_map>

#include "crew/error.hpp"

namespace crew::detail {
namespace {

// What follows the type name, what() and pid of a failed call.
enum class Carried : std::uint8_t { message_only = 0, object = 1, error_code = 2 };

struct Registry {
    std::mutex mutex;
    std::unordered_map<std::string, RebuildableException> types;  // by demangled name
};

template <class E>
void add_standard(Registry& registry) {
    registry.types[demangled_name(typeid(E))].from_message = &rebuilt_from_message<E>;
}

Registry& registry() {
    static Registry* registry = [] {
        auto* made = new Registry;  // never destroyed: workers may fail calls after main
        add_standard<std::logic_error>(*made);
        add_standard<std::invalid_argument>(*made);
        add_standard<std::domain_error>(*made);
        add_standard<std::length_error>(*made);
        add_standard<std::out_of_range>(*made);
        add_standard<std::runtime_error>(*made);
        add_standard<std::range_error>(*made);
        add_standard<std::overflow_error>(*made);
        add_standard<std::underflow_error>(*made);
        made->types[demangled_name(typeid(std::bad_alloc))].from_message = [](const std::string&) {
            return std::make_exception_ptr(std::bad_alloc());
        };
        return made;
    }();
    return *registry;
}

std::optional<RebuildableException> find(const std::string& type_name) {
    Registry& known = registry();
    std::lock_guard lock(known.mutex);
    const auto found = known.types.find(type_name);
    if (found == known.types.end()) return std::nullopt;
    return found->second;
}

// The standard categories a worker's std::system_error can name; another stays a RemoteError.
const std::error_category* category_named(const std::string& name) {
    for (const std::error_category* category :
         {&std::generic_category(), &std::system_category(), &std::iostream_category(),
          &std::future_category()}) {
        if (name == category->name()) return category;
    }
    return nullptr;
}

std::string with_pid(const std::string& message, std::int32_t pid) {
    return message + " (in worker pid " + std::to_string(pid) + ")";
}

}  // namespace

void add_rebuildable_exception(const std::type_info& type, RebuildableException how) {
    Registry& known = registry();
    std::lock_guard lock(known.mutex);
    known.types[demangled_name(type)] = how;
}

void encode_current_exception(Writer& out) {
    const std::exception_ptr error = std::current_exception();
    std::string what;
    Carried carried = Carried::message_only;
    std::error_code code;
    try {
        throw;
    } catch (const RemoteError& remote) {
        what = remote.message();  // a task that ran a task of its own: keep the original's text
    } catch (const std::system_error& system) {
        what = system.what();
        code = system.code();
        carried = Carried::error_code;
        // what() is the message given, then ": " and the code's own text, which comes again.
        const std::string suffix = ": " + code.message();
        if (what.size() >= suffix.size() && what.ends_with(suffix)) {
            what.resize(what.size() - suffix.size());
        }
    } catch (const std::exception& other) {
        what = other.what();
    } catch (...) {
    }
    const std::string type = current_exception_type_name();
    Writer object;
    if (carried == Carried::message_only) {
        if (auto how = find(type); how && how->encode) {
            try {
                how->encode(error, object);
                carried = Carried::object;
            } catch (...) {  // cannot be encoded after all: it arrives as a RemoteError
            }
        }
    }
    encode(out, type);
    encode(out, what);
    encode(out, static_cast<std::int32_t>(::getpid()));
    encode(out, carried);
    if (carried == Carried::object) {
        const MessageBytes bytes = object.take_bytes();
        encode(out, static_cast<std::uint64_t>(bytes.size()));
        if (bytes.size() != 0) out.write_bytes(bytes.bytes().data(), bytes.size());
    } else if (carried == Carried::error_code) {
        encode(out, static_cast<std::int32_t>(code.value()));
        encode(out, std::string(code.category().name()));
    }
}

std::exception_ptr with_context(const std::exception_ptr& error, const std::string& context) {
    try {
        std::rethrow_exception(error);
    } catch (const RemoteError& remote) {
        return std::make_exception_ptr(
            RemoteError(remote.type_name(), context + ": " + remote.message(), remote.pid()));
    } catch (const WorkerDied& died) {
        return std::make_exception_ptr(WorkerDied(died.exitcode(), died.pid(), context));
    } catch (const TimeoutError& timeout) {
        return std::make_exception_ptr(TimeoutError(context + ": " + timeout.what()));
    } catch (const std::exception& other) {
        // The exact type only: a subclass rebuilt as its base would lose what it is.
        const auto how = find(demangled_name(typeid(other)));
        if (how && how->from_message) return how->from_message(context + ": " + other.what());
    } catch (...) {
    }
    return error;
}

std::exception_ptr decode_exception(Reader& in) {
    std::string type = decode<std::string>(in);
    std::string what = decode<std::string>(in);
    const auto pid = decode<std::int32_t>(in);
    const auto carried = decode<Carried>(in);
    auto remote = [&] { return std::make_exception_ptr(RemoteError(type, what, pid)); };
    if (carried == Carried::object) {
        const auto size = decode<std::uint64_t>(in);
        Reader object(in.take(size));
        const auto how = find(type);
        if (!how || !how->decode) return remote();
        try {
            return how->decode(object);
        } catch (const std::exception&) {
            return remote();  // a type of the same name that reads differently here
        }
    }
    if (carried == Carried::error_code) {
        const auto value = decode<std::int32_t>(in);
        const auto category = decode<std::string>(in);
        const std::error_category* known = category_named(category);
        if (known == nullptr || type != demangled_name(typeid(std::system_error))) return remote();
        return std::make_exception_ptr(
            std::system_error(std::error_code(value, *known), with_pid(what, pid)));
    }
    const auto how = find(type);
    if (!how || !how->from_message) return remote();
    return how->from_message(with_pid(what, pid));
}

}  // namespace crew::detail
