# Every external dependency, found once, exposed as an imported target.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(ROCKSDB REQUIRED IMPORTED_TARGET rocksdb)
pkg_check_modules(LIBGIT2 REQUIRED IMPORTED_TARGET libgit2)
pkg_check_modules(SIMDJSON REQUIRED IMPORTED_TARGET simdjson)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(YAMLCPP REQUIRED IMPORTED_TARGET yaml-cpp)
find_package(Protobuf REQUIRED)
find_package(Boost 1.74 REQUIRED)
find_package(OpenSSL REQUIRED)  # TLS on the HTTP listeners (libssl-dev)
# prometheus-cpp's core library only (registry, families, text serializer):
# the admin listener serves /metrics itself, so no civetweb "pull" exposer.
find_package(prometheus-cpp REQUIRED COMPONENTS core)  # Debian 12: 1.0.1, no version file
# libsodium: the admin token's constant-time comparison.
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
# libpq: the postgres.* drivers (non-blocking API, pipeline mode).
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)

# CAF 0.17.6 ships no CMake package: link the libraries directly.
add_library(caf INTERFACE)
target_link_libraries(caf INTERFACE caf_core caf_io Threads::Threads)

# V8 from Debian's libnode, unpacked by tools/bootstrap into a private prefix.
set(FLOWSTATE_V8_PREFIX "${CMAKE_SOURCE_DIR}/third_party/v8-prefix/usr" CACHE PATH "libnode prefix")
if(NOT EXISTS "${FLOWSTATE_V8_PREFIX}/include/node/v8.h")
  message(FATAL_ERROR "V8 headers not found under ${FLOWSTATE_V8_PREFIX}: run tools/bootstrap")
endif()
add_library(v8 INTERFACE)
target_include_directories(v8 SYSTEM INTERFACE "${FLOWSTATE_V8_PREFIX}/include/node")
target_link_directories(v8 INTERFACE "${FLOWSTATE_V8_PREFIX}/lib/x86_64-linux-gnu")
target_link_libraries(v8 INTERFACE node Threads::Threads)
target_link_options(v8 INTERFACE "-Wl,-rpath,${FLOWSTATE_V8_PREFIX}/lib/x86_64-linux-gnu")
# Debian's libnode 108 is built without pointer compression: no V8_COMPRESS_POINTERS.

find_path(DOCTEST_INCLUDE_DIR doctest/doctest.h REQUIRED)
find_program(PYTHON_FOR_TESTS /usr/bin/python3 REQUIRED)
