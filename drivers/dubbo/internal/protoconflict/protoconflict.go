// Package protoconflict lets Dubbo-go's Triple package and Connect be
// linked into one program.
//
// Both register a protobuf file defining grpc.status.v1.Status (Dubbo-go
// v3.3.0's triple_protocol carries a copy of connect-go's
// connectext/grpc/status/v1/status.proto under another path), and the
// protobuf runtime panics at init on the second registration unless
// GOLANG_PROTOBUF_REGISTRATION_CONFLICT says otherwise (its documented
// switch, google.golang.org/protobuf/reflect/protoregistry). This
// package's init sets it to "ignore" when it is not set; the dubbo
// driver's init (Restore) takes it away again. The window is the
// program's package initialisation between the two.
//
// That this init runs before either registration is the language's
// initialisation order (Go 1.21 and later): packages are initialised in
// the order of their import paths, each once its imports are; this
// package imports only os, and its path sorts before
// google.golang.org/protobuf/reflect/protoregistry, which every
// registering package waits for. The conflict is harmless to both: each
// decodes its Status into its own Go type, without the registry.
package protoconflict

import "os"

const env = "GOLANG_PROTOBUF_REGISTRATION_CONFLICT"

var set bool

func init() {
	if _, ok := os.LookupEnv(env); !ok {
		os.Setenv(env, "ignore")
		set = true
	}
}

// Restore removes the setting if init made it.
func Restore() {
	if set {
		os.Unsetenv(env)
		set = false
	}
}
