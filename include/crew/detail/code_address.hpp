// crew/detail/code_address.hpp: naming a place in the program's code so that another process can
// find it again.
//
// A CodeAddress is an offset from the load address of a module (the executable or a shared
// library), together with the module's GNU build id. It means the same thing in every process
// running the same build, whatever the start method or machine, and resolving it checks the build
// id, so a process never follows an address it was merely sent.
#pragma once

#include <array>
#include <cstdint>

namespace crew::detail {

struct CodeAddress {
    std::array<std::uint8_t, 32> build_id{};
    std::uint8_t build_id_size = 0;
    std::uint64_t offset = 0;
};

// Where address lies: its module's build id and the offset into it. Throws crew::Error if the
// address is in no loaded module, or the module has no build id (link with -Wl,--build-id).
CodeAddress code_address_of(std::uintptr_t address);

// Marks address as a crew entry point, one of the functions resolve_entry_point will return.
// Entry points register themselves while the program starts (see callable.hpp).
void register_entry_point(std::uintptr_t address);

// The address of a registered entry point; throws crew::UnknownCallableError for anything else.
std::uintptr_t resolve_entry_point(const CodeAddress& where);

// The address of a function named in the symbol table of the module with that build id; throws
// crew::UnknownCallableError if no loaded module has the build id or no function starts there.
std::uintptr_t resolve_function(const CodeAddress& where);

// Reads the symbol table of the main executable now, so that processes forked later inherit it.
void preload_executable_symbols();

}  // namespace crew::detail
