// The HTTP server's limits (HttpServer, http_server.h), apart so that the
// service's configuration can hold them without the Beast headers.
// docs/operations.md ("Connections") says what each does for an operator.
#pragma once

#include <cstddef>
#include <cstdint>

namespace keyonce::service {

struct HttpLimits {
  size_t body_bytes = 1 << 20;              // 413 above this
  size_t header_bytes = 16 << 10;           // 431 above this
  int header_seconds = 10;                  // to receive a request's headers
  int idle_seconds = 60;                    // keep-alive: until the next request's first byte
  int request_seconds = 30;                 // to read a request's body, or write one reply
  size_t max_connections = 1024;            // all clients together
  size_t max_connections_per_client = 128;  // one client address (a reverse proxy is one)
  size_t reserve_connections = 16;          // over the caps, for /health only
};

// What RaiseOpenFilesLimit aims for: every connection, the reserve, and room
// for the state store, the logs and the runs' own connections.
uint64_t OpenFilesNeeded(const HttpLimits& limits);
// Raises this process's soft limit of open files (up to the hard one) to
// OpenFilesNeeded; returns the soft limit now in force.
uint64_t RaiseOpenFilesLimit(const HttpLimits& limits);

}  // namespace keyonce::service
