package claims

// The claims whose evidence rpcbench cannot produce yet: their verdict is
// inconclusive until the measurement exists, whatever cells are given.

func judgeC2(d *data) finding {
	return finding{
		inconclusive: "measurement not implemented: the responder-side queueing delay (publish to handler start, carried back in each reply) is not recorded; the responder histogram holds only the handling time",
		notes:        []string{"needs: the broker drivers' responders to report the time from publish to handler start in every reply"},
	}
}

func judgeC10(d *data) finding {
	return finding{
		inconclusive: "measurement not implemented: rpcbench has no call chains (a responder calling the next hop, sync or async-tail)",
		notes:        []string{"needs: a scenario key chain: {depth: N, mode: sync|async-tail} and responders that call the next hop through the same driver"},
	}
}
