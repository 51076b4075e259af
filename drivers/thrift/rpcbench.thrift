// The Bench service of the thrift driver: the Call message of
// internal/wire/rpcbench.proto as a Thrift struct (same fields, same
// numbers; Thrift has no unsigned integers, so id and the 32-bit fields
// carry their bits in signed types).
// Regenerate the Go code with `make thrift`.
namespace go benchthrift

struct Call {
  1: i64 id
  2: binary payload
  3: i32 checksum
  4: i64 service_time_ns
  5: i32 response_size
  6: i64 sent_unix_nano
  7: i64 handler_ns
  8: string error
  9: i64 queued_ns
}

service Bench {
  Call Unary(1: Call call)
}
