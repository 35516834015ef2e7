#include "connectors/common/net/transfer.h"

#include <gtest/gtest.h>

namespace keyonce::connectors::net {
namespace {

TEST(SafeUrl, RemovesUserinfoAndSecretQueryValues) {
  EXPECT_EQ(SafeUrl("https://user:pw@host.dk/path?x=1"), "https://host.dk/path?x=1");
  EXPECT_EQ(SafeUrl("https://host.dk/p?access_token=abc&page=2&api_key=k"),
            "https://host.dk/p?access_token=***&page=2&api_key=***");
  EXPECT_EQ(SafeUrl("https://host.dk/p#token=x"), "https://host.dk/p");
  EXPECT_EQ(SafeUrl("https://host.dk/a@b"), "https://host.dk/a@b");
  EXPECT_EQ(SafeUrl("u:p@host/x"), "host/x");
  EXPECT_EQ(SafeUrl(""), "");
}

TEST(UrlEncode, KeepsOnlyUnreserved) {
  EXPECT_EQ(UrlEncode("a b/ø?&=~"), "a%20b%2F%C3%B8%3F%26%3D~");
  EXPECT_EQ(UrlEncodePath("Behandlet filer/ø&x"), "Behandlet%20filer/%C3%B8%26x");
  EXPECT_EQ(UrlEncodePath("/a//b/"), "/a//b/");
}

TEST(Excerpt, CutsMasksAndFlattens) {
  EXPECT_EQ(Excerpt("cpr 010185-1233\nok"), "cpr xxxxxx-xxxx ok");
  std::string longtext(500, 'a');
  EXPECT_EQ(Excerpt(longtext).size(), 203u);
  EXPECT_EQ(Excerpt("\xc3\xb8\xc3\xb8", 3), "\xc3\xb8...");
}

// A number the cut falls in, or one a line break splits, is masked all the same.
TEST(Excerpt, MasksANumberTheCutOrALineBreakSplits) {
  // Compared, never printed: a failing test must not show the number either.
  const std::string cut = std::string(190, 'a') + " 01.01.85-1233 and more";
  EXPECT_TRUE(Excerpt(cut) == std::string(190, 'a') + " xx.xx.xx-...");
  const std::string broken = "person 010185\n1233 is blocked";
  EXPECT_TRUE(Excerpt(broken) == "person xxxxxx xxxx is blocked");
  EXPECT_EQ(Excerpt("made a text of 1048576000 bytes"), "made a text of 1048576000 bytes");
}

TEST(HttpStatus, ClassifiesAndNamesTheUrl) {
  Headers h;
  EXPECT_TRUE(HttpStatus(201, h, "", "http://x").ok());
  Status s = HttpStatus(422, h, "bad field", "https://u:p@host/cases?token=t");
  EXPECT_EQ(s.code(), Status::Code::kPermanent);
  EXPECT_EQ(s.message(), "HTTP 422 from https://host/cases?token=***: bad field");
  for (long code : {408L, 429L, 500L, 503L}) {
    EXPECT_TRUE(HttpStatus(code, h, "", "http://x").IsTransient()) << code;
  }
  EXPECT_EQ(HttpStatus(404, h, "", "http://x").code(), Status::Code::kPermanent);
  h.push_back({"retry-after", "7"});
  EXPECT_EQ(HttpStatus(429, h, "", "http://x").message(),
            "HTTP 429 from http://x (retry after 7 s)");
}

TEST(RetryAfter, SecondsAndDates) {
  HttpReply r;
  EXPECT_FALSE(RetryAfterSeconds(r));
  r.headers = {{"retry-after", " 12 "}};
  EXPECT_EQ(*RetryAfterSeconds(r), 12);
  r.headers = {{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}};
  EXPECT_EQ(*RetryAfterSeconds(r), 0);
  r.headers = {{"retry-after", "Fri, 01 Jan 2100 00:00:00 GMT"}};
  EXPECT_GT(*RetryAfterSeconds(r), 1e9);
  r.headers = {{"retry-after", "soon"}};
  EXPECT_FALSE(RetryAfterSeconds(r));
}

TEST(CurlStatus, ClassifiesTransportErrors) {
  EXPECT_TRUE(CurlStatus(CURLE_OK, nullptr, "x").ok());
  Status s = CurlStatus(CURLE_COULDNT_CONNECT, "Connection refused", "http://a:b@127.0.0.1:1/x");
  EXPECT_TRUE(s.IsTransient());
  EXPECT_EQ(s.message(), "connecting to http://127.0.0.1:1/x: Connection refused");
  EXPECT_TRUE(CurlStatus(CURLE_OPERATION_TIMEDOUT, "", "http://x").IsTransient());
  EXPECT_EQ(CurlStatus(CURLE_PEER_FAILED_VERIFICATION, "", "https://x").code(),
            Status::Code::kPermanent);
  EXPECT_EQ(CurlStatus(CURLE_UNSUPPORTED_PROTOCOL, "", "file:///etc/passwd").code(),
            Status::Code::kPermanent);
}

TEST(HttpReply, MediaTypeAndJson) {
  HttpReply r;
  r.headers = {{"content-type", "Application/JSON; charset=utf-8"}};
  EXPECT_EQ(r.MediaType(), "application/json");
  EXPECT_TRUE(r.IsJson());
  r.headers = {{"content-type", "application/problem+json"}};
  EXPECT_TRUE(r.IsJson());
  r.headers = {{"content-type", "text/html"}};
  EXPECT_FALSE(r.IsJson());
}

TEST(HttpClient, RefusedConnectionIsTransientAndNotSent) {
  HttpClient c;
  TransferInfo info;
  auto r = c.Perform(HttpRequest{"GET", "http://127.0.0.1:1/x", {}, "", ""}, &info);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsTransient()) << r.status().message();
  EXPECT_FALSE(info.request_sent);
}

TEST(HttpClient, FileUrlsAreRefused) {
  HttpClient c;
  auto r = c.Perform(HttpRequest{"GET", "file:///etc/passwd", {}, "", ""});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kPermanent) << r.status().message();
}

}  // namespace
}  // namespace keyonce::connectors::net

namespace keyonce::connectors::net {
namespace {

TEST(Urls, ResolveSetParamAndNextLink) {
  EXPECT_EQ(*ResolveUrl("http://h:1/a/b?x=1", "/c?page=2"), "http://h:1/c?page=2");
  EXPECT_EQ(*ResolveUrl("http://h/a/b", "https://o/z"), "https://o/z");
  EXPECT_EQ(SetQueryParam("http://h/a", "page", "2"), "http://h/a?page=2");
  EXPECT_EQ(SetQueryParam("http://h/a?page=1&q=x y#f", "page", "3"), "http://h/a?q=x y&page=3#f");
  EXPECT_EQ(SetQueryParam("http://h/a?", "c", "a&b"), "http://h/a?c=a%26b");
  EXPECT_EQ(NextLink("<http://h/x?_page=1>; rel=\"first\", <http://h/x?_page=2>; rel=\"next\", "
                     "<http://h/x?_page=5>; rel=\"last\""),
            "http://h/x?_page=2");
  EXPECT_EQ(NextLink("<http://h/x?a=1,2>; rel=\"next last\""), "http://h/x?a=1,2");
  EXPECT_EQ(NextLink("<http://h/x>; rel=prev"), "");
  EXPECT_EQ(NextLink("garbage <"), "");
  EXPECT_EQ(NextLink(""), "");
}

}  // namespace
}  // namespace keyonce::connectors::net
