// An exception thrown in a worker arrives as its own type (crew/remote_exception.hpp): every
// standard type, registered user types built from a message or serialized whole, through every
// way of waiting for a result, under every start method; anything else as crew::RemoteError.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <crew/crew.hpp>
#include <functional>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace {

using crew::StartMethod;

struct ParseError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
const bool parse_error_registered = crew::register_exception<ParseError>();

// Sent whole: its fields come back, what() is its own.
struct QuotaExceeded : std::exception {
    int used = 0;
    int limit = 0;
    QuotaExceeded() = default;
    QuotaExceeded(int used_, int limit_) : used(used_), limit(limit_) {}
    const char* what() const noexcept override { return "quota exceeded"; }
    template <class Archive>
    void serialize(Archive& archive) {
        archive(used, limit);
    }
};
const bool quota_registered = crew::register_exception<QuotaExceeded>();

struct NotRegistered : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

enum Kind {
    logic,
    invalid_argument,
    domain,
    length,
    out_of_range,
    runtime,
    range,
    overflow,
    underflow,
    bad_alloc,
    system,
    parse,
    quota,
    not_registered,
    kinds
};

int throw_kind(int kind) {
    switch (kind) {
        case logic:
            throw std::logic_error("logic");
        case invalid_argument:
            throw std::invalid_argument("invalid_argument");
        case domain:
            throw std::domain_error("domain");
        case length:
            throw std::length_error("length");
        case out_of_range:
            throw std::out_of_range("out_of_range");
        case runtime:
            throw std::runtime_error("runtime");
        case range:
            throw std::range_error("range");
        case overflow:
            throw std::overflow_error("overflow");
        case underflow:
            throw std::underflow_error("underflow");
        case bad_alloc:
            throw std::bad_alloc();
        case system:
            throw std::system_error(ENOENT, std::generic_category(), "opening x");
        case parse:
            throw ParseError("parse");
        case quota:
            throw QuotaExceeded(7, 5);
        case not_registered:
            throw NotRegistered("not_registered");
    }
    return kind;
}

// What arrived, checked as the kind thrown; an empty string when it is right.
std::string check(int kind, const std::exception_ptr& error) {
    const std::string pid_note = " (in worker pid ";
    auto message_is = [&](const std::exception& e, const std::string& message) -> std::string {
        const std::string what = e.what();
        if (what.rfind(message + pid_note, 0) != 0) return "what() is \"" + what + "\"";
        if (what.find(pid_note + std::to_string(getpid()) + ")") != std::string::npos) {
            return "the pid is the caller's";
        }
        return "";
    };
    try {
        std::rethrow_exception(error);
    } catch (const NotRegistered&) {
        return "an unregistered type was rebuilt";
    } catch (const crew::RemoteError& remote) {
        if (kind != not_registered) return "a RemoteError for kind " + std::to_string(kind);
        return remote.message() == "not_registered" && remote.pid() != getpid()
                   ? ""
                   : std::string("RemoteError ") + remote.what();
    } catch (const ParseError& e) {
        return kind == parse ? message_is(e, "parse") : "ParseError";
    } catch (const QuotaExceeded& e) {
        if (kind != quota) return "QuotaExceeded";
        return e.used == 7 && e.limit == 5 ? "" : "QuotaExceeded lost its fields";
    } catch (const std::system_error& e) {
        if (kind != system) return "system_error";
        if (e.code() != std::error_code(ENOENT, std::generic_category())) return "another code";
        return message_is(e, "opening x");
    } catch (const std::bad_alloc&) {
        return kind == bad_alloc ? "" : "bad_alloc";
    } catch (const std::invalid_argument& e) {
        return kind == invalid_argument ? message_is(e, "invalid_argument") : "invalid_argument";
    } catch (const std::domain_error& e) {
        return kind == domain ? message_is(e, "domain") : "domain_error";
    } catch (const std::length_error& e) {
        return kind == length ? message_is(e, "length") : "length_error";
    } catch (const std::out_of_range& e) {
        return kind == out_of_range ? message_is(e, "out_of_range") : "out_of_range";
    } catch (const std::range_error& e) {
        return kind == range ? message_is(e, "range") : "range_error";
    } catch (const std::overflow_error& e) {
        return kind == overflow ? message_is(e, "overflow") : "overflow_error";
    } catch (const std::underflow_error& e) {
        return kind == underflow ? message_is(e, "underflow") : "underflow_error";
    } catch (const std::logic_error& e) {
        return kind == logic ? message_is(e, "logic") : "logic_error";
    } catch (const std::runtime_error& e) {
        return kind == runtime ? message_is(e, "runtime")
                               : std::string("runtime_error ") + e.what();
    } catch (...) {
        return "something else";
    }
}

std::exception_ptr caught(const std::function<void()>& call) {
    try {
        call();
    } catch (...) {
        return std::current_exception();
    }
    return nullptr;
}

class RemoteExceptionTest : public ::testing::TestWithParam<StartMethod> {};

TEST_P(RemoteExceptionTest, EveryWayOfWaitingRethrowsTheTypeThrown) {
    EXPECT_TRUE(parse_error_registered && quota_registered);
    crew::Pool pool({.processes = 2, .start_method = GetParam()});
    crew::ProcessPoolExecutor executor({.max_workers = 1, .start_method = GetParam()});
    for (int kind = 0; kind < kinds; ++kind) {
        SCOPED_TRACE("kind " + std::to_string(kind));
        EXPECT_EQ(check(kind, caught([&] { pool.apply(throw_kind, kind); })), "") << "apply";
        EXPECT_EQ(check(kind, caught([&] { pool.apply_async(throw_kind, kind).get(); })), "")
            << "AsyncResult::get";
        EXPECT_EQ(check(kind, caught([&] { pool.map(throw_kind, std::vector<int>{kind}); })), "")
            << "map";
        EXPECT_EQ(check(kind, caught([&] {
                            for (int result : pool.imap(throw_kind, std::vector<int>{kind})) {
                                (void)result;
                            }
                        })),
                  "")
            << "imap";
        EXPECT_EQ(check(kind, caught([&] { executor.submit(throw_kind, kind).result(); })), "")
            << "Future::result";
        EXPECT_EQ(check(kind, executor.submit(throw_kind, kind).exception()), "")
            << "Future::exception";
    }
}

INSTANTIATE_TEST_SUITE_P(AllStartMethods, RemoteExceptionTest,
                         ::testing::Values(StartMethod::forkserver, StartMethod::fork,
                                           StartMethod::spawn),
                         [](const auto& info) { return std::string(crew::to_string(info.param)); });

}  // namespace
