#include "crew/detail/code_address.hpp"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "crew/error.hpp"
#include "foundation/library_lock.hpp"

namespace crew::detail {
namespace {

struct Module {
    std::uintptr_t base = 0;
    std::string path;  // empty for the main executable, as dl_iterate_phdr reports it
    CodeAddress identity;
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> segments;  // loaded [begin, end)

    bool contains(std::uintptr_t address) const {
        for (auto [begin, end] : segments) {
            if (address >= begin && address < end) return true;
        }
        return false;
    }
};

std::string describe(const CodeAddress& where) {
    std::string id;
    for (int i = 0; i < where.build_id_size; ++i) id += fmt::format("{:02x}", where.build_id[i]);
    return fmt::format("offset {:#x} in the module with build id {}", where.offset,
                       id.empty() ? "(none)" : id);
}

void read_build_id(const dl_phdr_info& info, CodeAddress& identity) {
    for (int i = 0; i < info.dlpi_phnum; ++i) {
        const ElfW(Phdr)& header = info.dlpi_phdr[i];
        if (header.p_type != PT_NOTE) continue;
        auto* note = reinterpret_cast<const char*>(info.dlpi_addr + header.p_vaddr);
        const char* end = note + header.p_memsz;
        while (note + sizeof(ElfW(Nhdr)) <= end) {
            const auto* n = reinterpret_cast<const ElfW(Nhdr)*>(note);
            const char* name = note + sizeof(ElfW(Nhdr));
            const char* desc = name + ((n->n_namesz + 3) & ~3u);
            if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
                std::memcmp(name, "GNU", 4) == 0 && n->n_descsz <= identity.build_id.size()) {
                identity.build_id_size = static_cast<std::uint8_t>(n->n_descsz);
                std::memcpy(identity.build_id.data(), desc, n->n_descsz);
                return;
            }
            note = desc + ((n->n_descsz + 3) & ~3u);
        }
    }
}

std::vector<Module> read_loaded_modules() {
    std::vector<Module> modules;
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* data) {
            Module module;
            module.base = info->dlpi_addr;
            module.path = info->dlpi_name ? info->dlpi_name : "";
            for (int i = 0; i < info->dlpi_phnum; ++i) {
                const ElfW(Phdr)& header = info->dlpi_phdr[i];
                if (header.p_type != PT_LOAD) continue;
                std::uintptr_t begin = info->dlpi_addr + header.p_vaddr;
                module.segments.emplace_back(begin, begin + header.p_memsz);
            }
            read_build_id(*info, module.identity);
            static_cast<std::vector<Module>*>(data)->push_back(std::move(module));
            return 0;
        },
        &modules);
    return modules;
}

// How many modules the dynamic loader has loaded and unloaded so far: a cache of the module list
// is current while these stay the same.
std::pair<unsigned long long, unsigned long long> loader_generation() {
    std::pair<unsigned long long, unsigned long long> generation{0, 0};
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t size, void* data) {
            if (size >= offsetof(dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
                *static_cast<std::pair<unsigned long long, unsigned long long>*>(data) = {
                    info->dlpi_adds, info->dlpi_subs};
            }
            return 1;  // the counters are the same in every entry: the first is enough
        },
        &generation);
    return generation;
}

bool same_build(const CodeAddress& a, const CodeAddress& b) {
    return a.build_id_size != 0 && a.build_id_size == b.build_id_size &&
           std::memcmp(a.build_id.data(), b.build_id.data(), a.build_id_size) == 0;
}

const Module& module_with_build(const std::vector<Module>& modules, const CodeAddress& where) {
    for (const Module& module : modules) {
        if (same_build(module.identity, where)) return module;
    }
    throw UnknownCallableError(
        "crew: asked to call " + describe(where) +
        ", but no module of this process has that build id. Every process must run the same build "
        "of the program; rebuild and restart the workers.");
}

// Offsets of the functions a module's ELF file names, read once per module. The full symbol table
// (.symtab) is used when present: it names static functions too; else the dynamic one.
std::vector<std::uint64_t> read_function_offsets(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_system_error("cannot open " + path + " to read its symbol table");
    struct stat status {};
    if (::fstat(fd, &status) != 0) {
        int error = errno;
        ::close(fd);
        throw SystemError("cannot stat " + path, error);
    }
    auto size = static_cast<std::size_t>(status.st_size);
    void* mapping = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int error = errno;
    ::close(fd);
    if (mapping == MAP_FAILED) throw SystemError("cannot map " + path, error);

    std::vector<std::uint64_t> offsets;
    const auto* bytes = static_cast<const unsigned char*>(mapping);
    const auto* file = reinterpret_cast<const ElfW(Ehdr)*>(bytes);
    bool valid = size >= sizeof(ElfW(Ehdr)) && std::memcmp(file->e_ident, ELFMAG, SELFMAG) == 0 &&
                 file->e_shoff + std::uint64_t{file->e_shnum} * sizeof(ElfW(Shdr)) <= size;
    if (valid) {
        const auto* sections = reinterpret_cast<const ElfW(Shdr)*>(bytes + file->e_shoff);
        const ElfW(Shdr)* table = nullptr;
        for (int i = 0; i < file->e_shnum; ++i) {
            if (sections[i].sh_type == SHT_SYMTAB) table = &sections[i];
            if (sections[i].sh_type == SHT_DYNSYM && table == nullptr) table = &sections[i];
        }
        if (table != nullptr && table->sh_offset + table->sh_size <= size) {
            const auto* symbols = reinterpret_cast<const ElfW(Sym)*>(bytes + table->sh_offset);
            std::size_t count = table->sh_size / sizeof(ElfW(Sym));
            for (std::size_t i = 0; i < count; ++i) {
                int type = ELF64_ST_TYPE(symbols[i].st_info);
                if ((type == STT_FUNC || type == STT_GNU_IFUNC) &&
                    symbols[i].st_shndx != SHN_UNDEF && symbols[i].st_value != 0) {
                    offsets.push_back(symbols[i].st_value);
                }
            }
        }
    }
    ::munmap(mapping, size);
    if (!valid) throw Error("crew: " + path + " is not an ELF file; cannot check callables in it");
    std::sort(offsets.begin(), offsets.end());
    offsets.erase(std::unique(offsets.begin(), offsets.end()), offsets.end());
    return offsets;
}

// What this process knows of its code, guarded by library_mutex(). It is filled in the parent and
// only read by the children it forks, so that their first calls copy as few pages as possible.
struct Registry {
    std::set<std::uintptr_t> entry_points;
    std::vector<Module> modules;
    std::pair<unsigned long long, unsigned long long> modules_generation{~0ull, ~0ull};
    std::map<std::string, std::vector<std::uint64_t>, std::less<>> function_offsets;  // by build id
};

// Never destroyed: entry points register during static initialisation, in any order.
Registry& registry() {
    static Registry* instance = new Registry;
    return *instance;
}

// The loaded modules, read again only after the loader loaded or unloaded one.
const std::vector<Module>& loaded_modules(Registry& r) {
    auto generation = loader_generation();
    if (generation != r.modules_generation) {
        r.modules = read_loaded_modules();
        r.modules_generation = generation;
    }
    return r.modules;
}

const std::vector<std::uint64_t>& function_offsets(Registry& r, const Module& module) {
    std::string_view key(reinterpret_cast<const char*>(module.identity.build_id.data()),
                         module.identity.build_id_size);
    auto found = r.function_offsets.find(key);
    if (found == r.function_offsets.end()) {
        std::string path = module.path.empty() ? "/proc/self/exe" : module.path;
        found = r.function_offsets.emplace(std::string(key), read_function_offsets(path)).first;
    }
    return found->second;
}

}  // namespace

CodeAddress code_address_of(std::uintptr_t address) {
    std::lock_guard lock(library_mutex());
    Registry& r = registry();
    for (const Module& module : loaded_modules(r)) {
        if (!module.contains(address)) continue;
        if (module.identity.build_id_size == 0) {
            throw Error(fmt::format(
                "crew: the code at {:#x} lies in {}, which has no GNU build id, so other "
                "processes cannot check they run the same build; link it with -Wl,--build-id",
                address, module.path.empty() ? "the executable" : module.path));
        }
        CodeAddress where = module.identity;
        where.offset = address - module.base;
        return where;
    }
    throw Error(fmt::format("crew: the code at {:#x} lies in no loaded module", address));
}

void register_entry_point(std::uintptr_t address) {
    std::lock_guard lock(library_mutex());
    Registry& r = registry();
    r.entry_points.insert(address);
}

std::uintptr_t resolve_entry_point(const CodeAddress& where) {
    std::lock_guard lock(library_mutex());
    Registry& r = registry();
    const Module& module = module_with_build(loaded_modules(r), where);
    std::uintptr_t address = module.base + where.offset;
    if (!r.entry_points.contains(address)) {
        throw UnknownCallableError("crew: asked to call " + describe(where) +
                                   ", which is not a crew entry point; nothing was called. The "
                                   "message was corrupted or came from another build.");
    }
    return address;
}

std::uintptr_t resolve_function(const CodeAddress& where) {
    std::lock_guard lock(library_mutex());
    Registry& r = registry();
    const Module& module = module_with_build(loaded_modules(r), where);
    const std::vector<std::uint64_t>& offsets = function_offsets(r, module);
    if (!std::binary_search(offsets.begin(), offsets.end(), where.offset)) {
        throw UnknownCallableError(
            "crew: asked to call " + describe(where) +
            ", where no function of that module's symbol table starts; nothing was called. If the "
            "program was stripped, keep its symbol table or pass a function object instead.");
    }
    return module.base + where.offset;
}

void preload_executable_symbols() {
    std::lock_guard lock(library_mutex());
    Registry& r = registry();
    for (const Module& module : loaded_modules(r)) {
        if (module.path.empty() && module.identity.build_id_size != 0) {
            (void)function_offsets(r, module);
            return;
        }
    }
}

}  // namespace crew::detail
