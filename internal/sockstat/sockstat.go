// Package sockstat reads the kernel's per-socket TCP counters (tcp_info,
// through the inet_diag netlink dump) of every TCP socket on the host, so
// that a cell can count the data segments and bytes each process's
// connections carried, including processes that are not rpcbench's
// (brokers, whose client libraries offer no hook).
package sockstat

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Counters are one socket's totals since it was created.
type Counters struct {
	// DataSegsOut and DataSegsIn count segments that carried data
	// (tcpi_data_segs_out/in: pure ACKs are not counted).
	DataSegsOut, DataSegsIn uint64
	// BytesSent (retransmissions included) and BytesReceived are payload
	// bytes (tcpi_bytes_sent, tcpi_bytes_received).
	BytesSent, BytesReceived uint64
	// LocalPort and RemotePort are the socket's ports (not summed).
	LocalPort, RemotePort uint16
}

// Sub is c minus an earlier reading of the same socket (counters only).
func (c Counters) Sub(earlier Counters) Counters {
	return Counters{
		DataSegsOut:   c.DataSegsOut - earlier.DataSegsOut,
		DataSegsIn:    c.DataSegsIn - earlier.DataSegsIn,
		BytesSent:     c.BytesSent - earlier.BytesSent,
		BytesReceived: c.BytesReceived - earlier.BytesReceived,
	}
}

// Add is the sum of c's and d's counters.
func (c Counters) Add(d Counters) Counters {
	return Counters{
		DataSegsOut:   c.DataSegsOut + d.DataSegsOut,
		DataSegsIn:    c.DataSegsIn + d.DataSegsIn,
		BytesSent:     c.BytesSent + d.BytesSent,
		BytesReceived: c.BytesReceived + d.BytesReceived,
	}
}

// Snapshot is every TCP socket (IPv4 and IPv6) in this network namespace
// that has an inode, by inode: sockets in TIME_WAIT have none and are left
// out (their data is counted while they were open, if a snapshot saw them).
func Snapshot() (map[uint32]Counters, error) {
	out := map[uint32]Counters{}
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		socks, err := netlink.SocketDiagTCPInfo(fam)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, fmt.Errorf("inet_diag dump: %w", err)
		}
		for _, s := range socks {
			if s.InetDiagMsg == nil || s.InetDiagMsg.INode == 0 || s.TCPInfo == nil {
				continue
			}
			i := s.TCPInfo
			out[s.InetDiagMsg.INode] = Counters{
				DataSegsOut:   uint64(i.Data_segs_out),
				DataSegsIn:    uint64(i.Data_segs_in),
				BytesSent:     i.Bytes_sent,
				BytesReceived: i.Bytes_received,
				LocalPort:     s.InetDiagMsg.ID.SourcePort,
				RemotePort:    s.InetDiagMsg.ID.DestinationPort,
			}
		}
	}
	return out, nil
}
