package pending

import (
	"errors"
	"testing"
)

func TestDeliverWithdrawFail(t *testing.T) {
	var tab Table
	s, idx := tab.Add()
	s2, idx2 := tab.Add()
	if idx != 0 || idx2 != 1 || tab.Lookup(ID(1, 5)) != s2 || tab.Lookup(ID(7, 1)) != nil {
		t.Fatal("lookup by index")
	}
	id := ID(idx, 1)
	s.Expect(id, make([]byte, 0, 8))
	// a reply to another call is not delivered
	if ok, _ := s.Deliver(id+1, func(b []byte) ([]byte, error) { t.Fatal("fill called"); return b, nil }); ok {
		t.Fatal("delivered a stale reply")
	}
	if ok, err := s.Deliver(id, func(b []byte) ([]byte, error) { return append(b, "hi"...), nil }); !ok || err != nil {
		t.Fatal("not delivered")
	}
	<-s.Done()
	if b, err := s.Result(); string(b) != "hi" || err != nil {
		t.Fatalf("result %q %v", b, err)
	}
	// a call that times out, whose reply then comes, is withdrawn cleanly
	s.Expect(ID(idx, 2), nil)
	if s.Withdraw() {
		t.Fatal("withdraw reported a reply")
	}
	if ok, _ := s.Deliver(ID(idx, 2), func(b []byte) ([]byte, error) { return b, nil }); ok {
		t.Fatal("delivered to a withdrawn call")
	}
	// fill errors leave the call pending; FailAll ends it
	s.Expect(ID(idx, 3), nil)
	boom := errors.New("boom")
	if ok, err := s.Deliver(ID(idx, 3), func(b []byte) ([]byte, error) { return b, boom }); ok || err != boom {
		t.Fatal("fill error")
	}
	tab.FailAll(boom)
	if !s.Withdraw() {
		t.Fatal("FailAll did not end the call")
	}
	if _, err := s.Result(); err != boom {
		t.Fatalf("err %v", err)
	}
	s.Expect(ID(idx, 4), nil)
	s.Fail(ID(idx, 4), boom)
	<-s.Done()
}
