// Virtual-host addressing end to end against the fixture's S3 server: requests go to
// "<bucket>.s3.localhost:PORT/<key>" (bucket in the Host header, not in the path), reach the server
// through S3Options::connect_to = 127.0.0.1 (*.s3.localhost names do not resolve here), and are
// SigV4-verified by the server's front end with the virtual host in the signed Host header.
#include <gtest/gtest.h>

#include <shardy/s3_client.hpp>

#include "s3_common_checks.hpp"
#include "s3_test_env.hpp"

using namespace shardy;
using namespace shardy::test;

namespace {

class S3VirtualHost : public S3ServerTest {
 protected:
  S3Options vhost_options() const {
    S3Options o = options();
    o.endpoint = "http://s3.localhost:" + std::to_string(info.port);
    o.addressing = S3Options::Addressing::virtual_host;
    o.connect_to = "127.0.0.1";  // the endpoint's port
    return o;
  }
  // The server records raw request paths: virtual-host requests have no bucket in them.
  std::string vhost_path_prefix() const { return "/" + prefix + "/"; }
};

TEST_F(S3VirtualHost, PutGetHeadListDelete) {
  auto c = client(vhost_options());
  auto path_style = client();  // the same objects seen through path-style requests

  const std::string body = "virtual host body\n";
  auto [pec, p] = call([&](auto tok) {
    return c.async_put_object(bucket, key("dir/a b.txt"), body, PutObjectRequest("text/plain"),
                              tok);
  });
  ASSERT_FALSE(pec) << pec.message() << ": " << p.diagnostics;
  ASSERT_EQ(p.etag.size(), 34u) << p.etag;
  auto [p2ec, p2] =
      call([&](auto tok) { return c.async_put_object(bucket, key("dir/sub/x"), "xx", tok); });
  ASSERT_FALSE(p2ec) << p2.diagnostics;

  // The object landed in the fixture's bucket: a path-style GET sees it.
  auto [gpec, gp] =
      call([&](auto tok) { return path_style.async_get_object(bucket, key("dir/a b.txt"), tok); });
  ASSERT_FALSE(gpec) << gp.diagnostics;
  EXPECT_EQ(gp.body, body);
  EXPECT_EQ(gp.etag, p.etag);

  auto [gec, g] =
      call([&](auto tok) { return c.async_get_object(bucket, key("dir/a b.txt"), tok); });
  ASSERT_FALSE(gec) << gec.message() << ": " << g.diagnostics;
  EXPECT_EQ(g.status, 200u);
  EXPECT_EQ(g.body, body);
  EXPECT_EQ(g.etag, p.etag);
  EXPECT_EQ(g.content_type, "text/plain");

  GetObjectRequest range(ByteRange::bounded(8, 4));
  auto [rec, r] =
      call([&](auto tok) { return c.async_get_object(bucket, key("dir/a b.txt"), range, tok); });
  ASSERT_FALSE(rec) << r.diagnostics;
  EXPECT_EQ(r.status, 206u);
  EXPECT_EQ(r.body, body.substr(8, 4));
  ASSERT_TRUE(r.content_range);
  EXPECT_EQ(r.content_range->total, body.size());

  auto [hec, h] =
      call([&](auto tok) { return c.async_head_object(bucket, key("dir/a b.txt"), tok); });
  ASSERT_FALSE(hec) << h.diagnostics;
  EXPECT_EQ(h.size, body.size());
  EXPECT_EQ(h.etag, p.etag);

  ListObjectsRequest flat(key("dir/"));
  auto [lec, l] = call([&](auto tok) { return c.async_list_objects_v2(bucket, flat, tok); });
  ASSERT_FALSE(lec) << lec.message() << ": " << l.diagnostics;
  ASSERT_EQ(l.objects.size(), 2u);
  EXPECT_EQ(l.objects[0].key, key("dir/a b.txt"));
  EXPECT_EQ(l.objects[0].size, body.size());
  EXPECT_EQ(l.objects[1].key, key("dir/sub/x"));
  ListObjectsRequest tree(key("dir/"), "/");
  auto [tec, t] = call([&](auto tok) { return c.async_list_objects_v2(bucket, tree, tok); });
  ASSERT_FALSE(tec) << t.diagnostics;
  ASSERT_EQ(t.objects.size(), 1u);
  EXPECT_EQ(t.objects[0].key, key("dir/a b.txt"));
  EXPECT_EQ(t.common_prefixes, std::vector<std::string>{key("dir/sub/")});

  auto [dec, d] =
      call([&](auto tok) { return c.async_delete_object(bucket, key("dir/a b.txt"), tok); });
  ASSERT_FALSE(dec) << d.diagnostics;
  auto [hec2, h2] =
      call([&](auto tok) { return c.async_head_object(bucket, key("dir/a b.txt"), tok); });
  EXPECT_EQ(hec2, errc::object_not_found) << hec2.message() << ": " << h2.diagnostics;
  auto [gpec2, gp2] =
      call([&](auto tok) { return path_style.async_get_object(bucket, key("dir/a b.txt"), tok); });
  EXPECT_EQ(gpec2, errc::object_not_found) << gp2.diagnostics;

  // On the wire the object requests were virtual-host style: the server saw paths without the
  // bucket (PUT x2, GET x2, HEAD x2, DELETE x1), and the path-style GETs with it.
  EXPECT_EQ(request_stats(vhost_path_prefix(), "front", "PUT").requests, 2u);
  EXPECT_EQ(request_stats(vhost_path_prefix(), "front", "GET").requests, 2u);
  EXPECT_EQ(request_stats(vhost_path_prefix(), "front", "HEAD").requests, 2u);
  EXPECT_EQ(request_stats(vhost_path_prefix(), "front", "DELETE").requests, 1u);
  EXPECT_EQ(request_stats(path_prefix(), "front", "GET").requests, 2u);
}

TEST_F(S3VirtualHost, ConditionalPutsAndListingPages) {
  auto c = client(vhost_options());
  PutObjectRequest create_only("application/octet-stream", true);
  auto [e1, r1] = call(
      [&](auto tok) { return c.async_put_object(bucket, key("once"), "first", create_only, tok); });
  ASSERT_FALSE(e1) << r1.diagnostics;
  auto [e2, r2] = call([&](auto tok) {
    return c.async_put_object(bucket, key("once"), "second", create_only, tok);
  });
  EXPECT_EQ(e2, errc::precondition_failed) << e2.message() << ": " << r2.diagnostics;

  for (int i = 0; i < 5; ++i) {
    auto [e, r] = call([&](auto tok) {
      return c.async_put_object(bucket, key("pages/" + std::to_string(i)), "p", tok);
    });
    ASSERT_FALSE(e) << r.diagnostics;
  }
  // Page by page with continuation tokens (max-keys=2 on the first page).
  ListObjectsResult l, r;
  ASSERT_NO_FATAL_FAILURE(list_first_page_then_rest(c, bucket, key("pages/"), 2, l, r));
  ASSERT_EQ(l.objects.size(), 2u);
  ASSERT_EQ(r.objects.size(), 3u);
  EXPECT_EQ(r.objects.back().key, key("pages/4"));
}

TEST_F(S3VirtualHost, WrongSecretIsSignatureMismatch) {
  // The server verifies the signature against the virtual host (its canonical request names it).
  auto c = client(with_wrong_secret(vhost_options(), info));
  get_with_bad_signature(c, bucket, key("anything"));
}

TEST_F(S3VirtualHost, WithoutConnectToTheVirtualHostNameDoesNotResolve) {
  // The reason for connect_to: the same options without it fail to connect (no DNS record for
  // <bucket>.s3.localhost on this machine). Skipped where the resolver does answer *.localhost.
  auto o = vhost_options();
  o.connect_to.clear();
  o.retry.max_attempts = 1;
  auto c = client(o);
  auto [ec, g] = call([&](auto tok) { return c.async_head_object(bucket, key("anything"), tok); });
  if (!ec || ec == errc::object_not_found) {
    GTEST_SKIP() << "this machine resolves " << bucket << ".s3.localhost";
  }
  EXPECT_EQ(ec, errc::connection_failed) << ec.message() << ": " << g.diagnostics;
  EXPECT_NE(g.diagnostics.find("resolving"), std::string::npos) << g.diagnostics;
}

}  // namespace
