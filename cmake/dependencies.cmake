# Every dependency comes from a Debian 12 package (see tools/setup.sh).
find_package(Threads REQUIRED)
# Boost 1.81 (libboost1.81-dev family); never the 1.74 default, which lacks JSON and URL.
find_package(Boost 1.81...<1.82 CONFIG REQUIRED COMPONENTS json url)
find_package(OpenSSL REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(PkgConfig REQUIRED)
# libxxhash and libzstd ship pkg-config files only.
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET GLOBAL libxxhash)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET GLOBAL libzstd)
