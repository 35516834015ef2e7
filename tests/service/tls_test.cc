// `keyonce serve --tls-cert --tls-key`: HTTPS with a certificate from a test
// CA (openssl), the session cookie marked Secure, and plain HTTP refused on
// the TLS port.
#include <curl/curl.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/support/http_servers.h"
#include "tests/cli_util.h"
#include "tests/support/service.h"

namespace keyonce::testing_util {
namespace {

struct Reply {
  long status = 0;
  CURLcode code = CURLE_OK;
  std::string body, headers;
};

size_t Append(char* p, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

Reply Fetch(const std::string& url, const std::string& ca, const std::string& token,
            const std::string& post = "") {
  Reply r;
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, Append);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
  if (!ca.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, ca.c_str());
  struct curl_slist* h = nullptr;
  if (!token.empty()) h = curl_slist_append(h, ("Authorization: Bearer " + token).c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  if (!post.empty()) curl_easy_setopt(c, CURLOPT_POSTFIELDS, post.c_str());
  r.code = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return r;
}

TEST(ServiceTls, ServesHttpsWithSecureCookiesAndRefusesPlainHttp) {
  const std::string token = "ko_" + std::string(40, 'f');
  Service svc(Binary());
  http::TestCerts certs;
  std::string why;
  ASSERT_TRUE(http::MakeTestCerts(svc.dir() / "certs", &certs, &why)) << why;
  svc.WriteTokens({{"olga", "operator", {}, token}});
  svc.WriteRecipe("hello.yaml", R"(recipe: hello
source: {type: csv, path: in.csv}
key: "{{ record.id }}"
targets:
  - {name: out, type: jsonl, path: out.jsonl}
)");
  ASSERT_TRUE(svc.Start({"--tls-cert", certs.server_cert.string(), "--tls-key", certs.server_key.string()}, &why))
      << why;
  ASSERT_NE(svc.CurrentLog().find("listening on https://127.0.0.1:"), std::string::npos) << svc.CurrentLog();
  const std::string base = "https://127.0.0.1:" + std::to_string(svc.port());

  Reply ok = Fetch(base + "/api/v1/session", certs.ca.string(), token);
  ASSERT_EQ(ok.code, CURLE_OK) << curl_easy_strerror(ok.code);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_NE(ok.body.find("\"role\":\"operator\""), std::string::npos) << ok.body;

  // The certificate is checked: a client trusting another CA refuses it.
  Reply wrong_ca = Fetch(base + "/health", certs.other_ca.string(), "");
  EXPECT_NE(wrong_ca.code, CURLE_OK);

  Reply login = Fetch(base + "/login", certs.ca.string(), "", "token=" + token);
  EXPECT_EQ(login.status, 303);
  EXPECT_NE(login.headers.find("; Secure"), std::string::npos) << login.headers;
  EXPECT_NE(login.headers.find("HttpOnly"), std::string::npos) << login.headers;

  // Plain HTTP on the TLS port gets no HTTP answer.
  Reply plain = Fetch("http://127.0.0.1:" + std::to_string(svc.port()) + "/health", "", "");
  EXPECT_EQ(plain.status, 0) << plain.body;

  EXPECT_EQ(svc.Stop(SIGTERM), std::optional<int>(0)) << svc.CurrentLog();
  EXPECT_EQ(svc.CurrentLog().find(token), std::string::npos);
}

}  // namespace
}  // namespace keyonce::testing_util
