#pragma once
// The files the dynamic loader opens to start an ELF program or load a shared
// object: its interpreter and DT_NEEDED libraries, found as ld.so would
// (DT_RPATH/DT_RUNPATH, then the system directories), recursively. Read
// from the files themselves, without running anything.
#include <string>
#include <vector>

namespace flowstate::sandbox::detail {

// Paths as the loader names them (symlinks not resolved); appends to `out`
// what is not there yet. Unreadable or non-ELF files are skipped.
void elf_dependencies(const std::string& file, std::vector<std::string>& out);

}  // namespace flowstate::sandbox::detail
