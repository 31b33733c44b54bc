// Every public header compiles on its own, in one translation unit, without Beast/SQLite/OpenSSL.
#include <gtest/gtest.h>

#include <shardy/access_mode.hpp>
#include <shardy/credentials.hpp>
#include <shardy/error.hpp>
#include <shardy/key.hpp>
#include <shardy/manifest.hpp>
#include <shardy/manifest_store.hpp>
#include <shardy/object_store.hpp>
#include <shardy/routing.hpp>
#include <shardy/s3_client.hpp>
#include <shardy/shard_lookup.hpp>
#include <shardy/store.hpp>

#ifdef SQLITE_VERSION
#error "a public header included sqlite3.h"
#endif
#ifdef BOOST_BEAST_VERSION
#error "a public header included Beast"
#endif
#ifdef OPENSSL_VERSION_NUMBER
#error "a public header included OpenSSL"
#endif

TEST(PublicHeaders, ByteRangeFactories) {
  EXPECT_EQ(shardy::ByteRange::suffix(10).type, shardy::ByteRange::kind::suffix);
  EXPECT_EQ(shardy::ByteRange::bounded(5, 10).offset, 5u);
}
