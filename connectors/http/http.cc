// The `http` connector: settings (declared once, as data) and registration.
// Source and lookup: http_source.cc; target: http_target.cc; shared parts:
// http_common.cc; the transfer layer: connectors/common/net/.

#include "connectors/http/http_internal.h"
#include "keyonce/connector.h"

namespace keyonce::connectors::http {
namespace {

constexpr const char* kUrlEscaping =
    " Each {{ }} value is percent-encoded, so a record value cannot change the URL's structure; "
    "a {{ }} at the very start is inserted as it is (a base URL from params).";

ConnectorDef HttpConnector() {
  ConnectorDef def;
  def.name = "http";
  def.summary =
      "REST/JSON APIs: paged GET as a source, a request per record as a target, GET by key as "
      "a lookup; OAuth2, API keys and mutual TLS.";

  ComponentSpec source;
  source.summary =
      "GETs (or POSTs) a URL and streams the records of the JSON reply, page by page: only one "
      "page is held in memory. Paging follows a next link (JSON path or Link header), page "
      "numbers, offsets or cursors until a page is empty or has no next page.";
  source.fields = {
      FieldSpec::Tmpl("url", TemplateContext::kText)
          .Roots(kRootsStatic)
          .Required()
          .Describe(std::string("The first page's URL; may use params, run and state.") +
                    kUrlEscaping)
          .Example("\"https://cases.example.dk/api/cases?changed_since={{ state.watermark }}\""),
      FieldSpec::Enum("method", {"GET", "POST"})
          .Default("GET")
          .Describe("GET, or POST for search endpoints that take a JSON body.")
          .Example("GET"),
      FieldSpec::Structure("body")
          .Roots(kRootsStatic)
          .Describe("JSON body for method POST (a YAML structure whose strings are templates).")
          .Example("{status: open, municipality: \"{{ params.kommune }}\"}"),
      FieldSpec::String("records")
          .Describe(
              "JSON path of the records in each page: a list (each element is a record) or "
              "values selected with [*]. Default: the whole reply (a list of records). Syntax: "
              "$.data.items, data.items[*], [0].id, meta['next page'].")
          .Example("$.data.items"),
      FieldSpec::Object(
          "paging",
          {
              FieldSpec::Enum("type", {"none", "next_link", "page", "offset", "cursor"})
                  .Required()
                  .Describe(
                      "next_link: follow a next-page URL; page: a page-number parameter; offset: "
                      "an offset parameter advanced by the records received; cursor: a cursor "
                      "from each reply sent back as a parameter.")
                  .Example("next_link"),
              FieldSpec::String("next")
                  .Describe("next_link: JSON path of the next page's URL (absolute or relative). "
                            "Default: the Link header's rel=\"next\".")
                  .Example("$.links.next"),
              FieldSpec::String("param")
                  .Describe("Query parameter of the page number, offset or cursor. Default: "
                            "page, offset or cursor.")
                  .Example("_page"),
              FieldSpec::Int("start")
                  .Describe("First page number (page: default 1) or offset (offset: default 0).")
                  .Example("1"),
              FieldSpec::String("size_param")
                  .Describe("Query parameter of the page size (sent with every page).")
                  .Example("_limit"),
              FieldSpec::Int("size")
                  .Describe("Page size. With page/offset paging a page with fewer records is the "
                            "last one.")
                  .Example("100"),
              FieldSpec::String("cursor")
                  .Describe("cursor: JSON path of the next cursor in each reply; reading ends "
                            "when it is missing, null or empty.")
                  .Example("$.meta.next_cursor"),
              FieldSpec::Int("max_pages")
                  .Describe("Guard against endless paging: reading fails after this many pages "
                            "(default 1000).")
                  .Example("1000"),
          })
          .Describe("How to get the following pages. Without it, one request is made.")
          .Example("{type: page, param: _page, size_param: _limit, size: 100}"),
      FieldSpec::Int("retry_attempts")
          .Default("3")
          .Describe(
              "Attempts per page for transient failures (connection errors, timeouts, 408, 429, "
              "5xx), waiting 1, 2, 4... seconds or the server's Retry-After (up to 60 s).")
          .Example("3"),
  };
  AddCommonFields(source, kRootsStatic);
  source.example_yaml =
      "source:\n"
      "  type: http\n"
      "  url: \"https://cases.example.dk/api/cases?changed_since={{ state.watermark }}\"\n"
      "  records: $.data\n"
      "  paging: {type: next_link, next: $.links.next}\n"
      "  auth:\n"
      "    type: oauth2_client_credentials\n"
      "    token_url: https://login.example.dk/oauth2/token\n"
      "    client_id: keyonce\n"
      "    client_secret: \"{{ secrets.case_client_secret }}\"\n";
  def.source = std::move(source);

  ComponentSpec target;
  target.summary =
      "Sends one request per record (POST by default), several in flight. The reply "
      "({status, headers, body}) is available to captures. Each request is its own commit; a "
      "request whose outcome is unknown (a timeout after sending, a 500) is only sent again "
      "when that cannot create a duplicate: the method is idempotent, or `exists` says the "
      "record is not there.";
  target.fields = {
      FieldSpec::Tmpl("url", TemplateContext::kText)
          .Required()
          .Describe(std::string("Where to send each record.") + kUrlEscaping)
          .Example("\"{{ params.base_url }}/api/cases\""),
      FieldSpec::Enum("method", {"POST", "PUT", "PATCH", "DELETE"})
          .Default("POST")
          .Describe("HTTP method. PUT and DELETE are idempotent: sending twice leaves one copy.")
          .Example("POST"),
      FieldSpec::Structure("body")
          .Describe(
              "The JSON body: a YAML structure whose strings are templates (a lone {{ }} keeps "
              "the value's type). Default: the record as JSON (none for DELETE).")
          .Example("{cpr: \"{{ record.cpr }}\", hours: \"{{ record.hours }}\"}"),
      FieldSpec::Tmpl("body_json", TemplateContext::kJson)
          .Describe("The body as JSON text instead of body; values are inserted JSON-encoded "
                    "(strings quoted and escaped).")
          .Example("'{\"cpr\": {{ record.cpr }}, \"tags\": [\"sick-leave\"]}'"),
      FieldSpec::String("content_type")
          .Default("application/json")
          .Describe("Content-Type of the body (unless headers set one).")
          .Example("application/json"),
      FieldSpec::Tmpl("exists", TemplateContext::kText)
          .Describe(
              std::string("URL of a GET that tells whether the record is already there: 2xx = "
                          "there (a 200 with an empty list counts as absent), 404/410 = absent. "
                          "Used for records in doubt after a crash and before resending a write "
                          "whose outcome is unknown.") +
              kUrlEscaping)
          .Example("\"{{ params.base_url }}/api/cases/{{ record.id }}\""),
      FieldSpec::Tmpl("update_url", TemplateContext::kText)
          .Describe(std::string("Where to send a record whose content changed since it was "
                                "written (then the target supports on_change: update).") +
                    kUrlEscaping)
          .Example("\"{{ params.base_url }}/api/cases/{{ captures.cases.id }}\""),
      FieldSpec::Enum("update_method", {"PUT", "PATCH", "POST"})
          .Default("PUT")
          .Describe("Method for updates (with update_url).")
          .Example("PUT"),
      FieldSpec::Bool("idempotent")
          .Default("false")
          .Describe("Declares that sending the same record twice leaves one copy (e.g. the API "
                    "de-duplicates on an id in the body), so a write with an unknown outcome may "
                    "simply be sent again.")
          .Example("false"),
      FieldSpec::Enum("reply_format", {"auto", "json", "text"})
          .Default("auto")
          .Describe(
              "auto: the reply body is parsed as JSON when its content type says JSON, else kept "
              "as text; json: it must be JSON (else the record fails); text: always text.")
          .Example("auto"),
      FieldSpec::Int("in_flight")
          .Default("4")
          .Describe("Requests kept in flight at once (1-256), over kept-alive connections.")
          .Example("8"),
      FieldSpec::Number("rate_limit")
          .Default("0")
          .Describe("Most requests started per second, evenly spaced; 0 = no limit.")
          .Example("20"),
  };
  AddCommonFields(target, kRootsRecord);
  target.example_yaml =
      "- name: cases\n"
      "  type: http\n"
      "  url: \"{{ params.base_url }}/api/cases\"\n"
      "  body: {cpr: \"{{ record.cpr }}\", from: \"{{ record.from_date }}\"}\n"
      "  exists: \"{{ params.base_url }}/api/cases?external_id={{ record.id }}\"\n"
      "  auth: {type: bearer, token: \"{{ secrets.case_token }}\"}\n"
      "  in_flight: 8\n"
      "  capture:\n"
      "    case_id: \"{{ reply.body.id }}\"\n";
  def.target = std::move(target);

  ComponentSpec lookup;
  lookup.summary =
      "GETs a URL built from the key ({{ key }}): 404 or an empty list means no match, 2xx "
      "gives the record (the engine caches answers per run).";
  lookup.fields = {
      FieldSpec::Tmpl("url", TemplateContext::kText)
          .Roots(kRootsStatic | kRootKey)
          .Required()
          .Describe(std::string("URL for one key, written {{ key }}.") + kUrlEscaping)
          .Example("\"https://cpr.example.dk/api/residents/{{ key }}\""),
      FieldSpec::String("record")
          .Describe(
              "JSON path of the record in the reply (an object, or a list whose first element "
              "is taken). Default: the whole reply.")
          .Example("$.data"),
  };
  AddCommonFields(lookup, kRootsStatic | kRootKey);
  lookup.example_yaml =
      "tables:\n"
      "  residents:\n"
      "    type: http\n"
      "    url: \"https://cpr.example.dk/api/residents/{{ key }}\"\n"
      "    auth: {type: api_key, header: X-API-Key, value: \"{{ secrets.cpr_api_key }}\"}\n";
  def.lookup = std::move(lookup);

  def.make_source = MakeSource;
  def.make_target = MakeTarget;
  def.make_lookup = MakeLookup;
  return def;
}

}  // namespace
}  // namespace keyonce::connectors::http

KEYONCE_REGISTER_CONNECTOR(keyonce::connectors::http::HttpConnector());
