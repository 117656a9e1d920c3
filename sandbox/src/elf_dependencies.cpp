#include "elf_dependencies.hpp"

#include <elf.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

namespace flowstate::sandbox::detail {
namespace {

const char* const system_dirs[] = {
    "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"};

struct elf_info {
  std::string interpreter;
  std::vector<std::string> needed;
  std::vector<std::string> search;  // rpath/runpath entries, $ORIGIN expanded
};

// Reads `size` bytes at `offset`; empty when the file is shorter.
std::string read_at(std::ifstream& in, uint64_t offset, uint64_t size) {
  if (size > (uint64_t{64} << 20)) return {};
  std::string bytes(size, '\0');
  in.clear();
  in.seekg(static_cast<std::streamoff>(offset));
  if (!in.read(bytes.data(), static_cast<std::streamsize>(size))) return {};
  return bytes;
}

bool read_elf(const std::string& path, elf_info& info) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::string head = read_at(in, 0, sizeof(Elf64_Ehdr));
  if (head.size() != sizeof(Elf64_Ehdr) || std::memcmp(head.data(), ELFMAG, SELFMAG) != 0 ||
      head[EI_CLASS] != ELFCLASS64)
    return false;
  Elf64_Ehdr header;
  std::memcpy(&header, head.data(), sizeof header);
  std::string table = read_at(in, header.e_phoff, uint64_t(header.e_phnum) * header.e_phentsize);
  if (table.empty() || header.e_phentsize < sizeof(Elf64_Phdr)) return false;
  std::vector<Elf64_Phdr> segments(header.e_phnum);
  for (int i = 0; i < header.e_phnum; ++i)
    std::memcpy(&segments[i], table.data() + size_t(i) * header.e_phentsize, sizeof(Elf64_Phdr));
  auto offset_of = [&](uint64_t address) -> uint64_t {
    for (auto& s : segments)
      if (s.p_type == PT_LOAD && address >= s.p_vaddr && address < s.p_vaddr + s.p_filesz)
        return address - s.p_vaddr + s.p_offset;
    return ~uint64_t{0};
  };
  std::string origin = path.substr(0, path.rfind('/'));
  for (auto& s : segments) {
    if (s.p_type == PT_INTERP) info.interpreter = read_at(in, s.p_offset, s.p_filesz).c_str();
    if (s.p_type != PT_DYNAMIC) continue;
    std::string dynamic = read_at(in, s.p_offset, s.p_filesz);
    std::vector<Elf64_Dyn> entries;
    for (size_t at = 0; at + sizeof(Elf64_Dyn) <= dynamic.size(); at += sizeof(Elf64_Dyn)) {
      Elf64_Dyn entry;
      std::memcpy(&entry, dynamic.data() + at, sizeof entry);
      if (entry.d_tag == DT_NULL) break;
      entries.push_back(entry);
    }
    uint64_t strtab = ~uint64_t{0}, strsz = 0;
    for (auto& e : entries) {
      if (e.d_tag == DT_STRTAB) strtab = offset_of(e.d_un.d_ptr);
      if (e.d_tag == DT_STRSZ) strsz = e.d_un.d_val;
    }
    if (strtab == ~uint64_t{0}) continue;
    std::string strings = read_at(in, strtab, strsz);
    auto string_at = [&](uint64_t at) -> std::string {
      return at < strings.size() ? std::string(strings.c_str() + at) : std::string();
    };
    for (auto& e : entries) {
      if (e.d_tag == DT_NEEDED) info.needed.push_back(string_at(e.d_un.d_val));
      if (e.d_tag == DT_RPATH || e.d_tag == DT_RUNPATH) {
        std::stringstream dirs(string_at(e.d_un.d_val));
        for (std::string dir; std::getline(dirs, dir, ':');) {
          if (auto o = dir.find("$ORIGIN"); o != std::string::npos) dir.replace(o, 7, origin);
          if (!dir.empty()) info.search.push_back(dir);
        }
      }
    }
  }
  return true;
}

void visit(const std::string& file, const std::vector<std::string>& inherited_search, std::vector<std::string>& out) {
  elf_info info;
  if (!read_elf(file, info)) return;
  if (!info.interpreter.empty() && std::find(out.begin(), out.end(), info.interpreter) == out.end())
    out.push_back(info.interpreter);
  std::vector<std::string> search = info.search;
  search.insert(search.end(), inherited_search.begin(), inherited_search.end());
  for (const auto& name : info.needed) {
    std::string found;
    if (name.find('/') != std::string::npos) {
      found = name;
    } else {
      for (const auto& dir : search)
        if (::access((dir + "/" + name).c_str(), R_OK) == 0) {
          found = dir + "/" + name;
          break;
        }
      for (const char* dir : system_dirs)
        if (found.empty() && ::access((std::string(dir) + "/" + name).c_str(), R_OK) == 0)
          found = std::string(dir) + "/" + name;
    }
    if (found.empty() || std::find(out.begin(), out.end(), found) != out.end()) continue;
    out.push_back(found);
    // DT_RPATH of the object applies to its dependencies too (DT_RUNPATH does
    // not, but passing it on only finds files that exist).
    visit(found, search, out);
  }
}

}  // namespace

void elf_dependencies(const std::string& file, std::vector<std::string>& out) { visit(file, {}, out); }

}  // namespace flowstate::sandbox::detail
