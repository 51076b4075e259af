package broker

// ActiveMQ Classic: Debian's package (activemq 5.17, /usr/share/activemq),
// from one of two sources that run the same java command with rpcbench's
// own activemq.xml:
//   - container (the default when a Docker engine answers and the image
//     exists): the local image rpcbench.local/activemq:5.17 built by
//     docker/activemq/build.sh (`make brokers`), host networking, the
//     configuration passed in the environment;
//   - process: java from the machine's own package, the configuration
//     written to the broker's run directory.
//
// The configuration: JMX off, KahaDB under the run directory, one
// STOMP connector on a free port of 127.0.0.1 with transport.tcpNoDelay=true
// (the broker's default is false), no OpenWire connector. Ready = a STOMP
// CONNECT answered with CONNECTED; the version recorded is the one the
// CONNECTED frame's server header names ("ActiveMQ/5.17.2").
//
// The set-up scripts install the package and build the image
// (docker/ensure-brokers.sh, .ci/ensure-deps.sh); rpcbench itself never
// installs anything.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ActiveMQ defaults.
const (
	// ActiveMQHome is where Debian's activemq package puts the broker.
	ActiveMQHome = "/usr/share/activemq"
	// ActiveMQHeap is the JVM heap the broker gets.
	ActiveMQHeap = "-Xms256m -Xmx512m"
	// ActiveMQLocalImage is the image docker/activemq/build.sh builds.
	ActiveMQLocalImage = "rpcbench.local/activemq:5.17"
)

// activeMQParams are the StartOptions.Params the starter accepts.
var activeMQParams = map[string]string{
	"source": "auto (default; RPCBENCH_ACTIVEMQ_SOURCE), container or process",
	"keep":   "true labels the container to be kept (rpcbench brokers up)",
}

// activeMQOpens are the module options /usr/bin/activemq (5.17) passes to
// JDK 9 and later.
var activeMQOpens = []string{
	"--add-reads=java.xml=java.logging",
	"--add-opens", "java.base/java.security=ALL-UNNAMED",
	"--add-opens", "java.base/java.net=ALL-UNNAMED",
	"--add-opens", "java.base/java.lang=ALL-UNNAMED",
	"--add-opens", "java.base/java.util=ALL-UNNAMED",
	"--add-opens", "java.naming/javax.naming.spi=ALL-UNNAMED",
	"--add-opens", "java.rmi/sun.rmi.transport.tcp=ALL-UNNAMED",
	"--add-opens", "java.base/java.util.concurrent=ALL-UNNAMED",
	"--add-opens", "java.base/java.util.concurrent.atomic=ALL-UNNAMED",
	"--add-exports=java.base/sun.net.www.protocol.http=ALL-UNNAMED",
	"--add-exports=java.base/sun.net.www.protocol.https=ALL-UNNAMED",
	"--add-exports=java.base/sun.net.www.protocol.jar=ALL-UNNAMED",
	"--add-exports=jdk.xml.dom/org.w3c.dom.html=ALL-UNNAMED",
	"--add-exports=jdk.naming.rmi/com.sun.jndi.url.rmi=ALL-UNNAMED",
}

// ActiveMQ returns the ActiveMQ starter. StartOptions.Params: "source":
// "auto" (default, or RPCBENCH_ACTIVEMQ_SOURCE), "container" or "process";
// auto picks the container when a Docker engine answers and the image
// exists, else a local process when java and the package are here, else
// the broker is Unavailable; "keep": "true" (container source). The
// Broker's URL is
// stomp://127.0.0.1:PORT; Details record the JVM, its options, the store,
// the connector and the startup time.
func ActiveMQ() Starter {
	return func(ctx context.Context, opts StartOptions) (Broker, func(context.Context) error, error) {
		a, err := StartActiveMQ(ctx, opts)
		if err != nil {
			return Broker{}, nil, err
		}
		return a.Broker, a.Stop, nil
	}
}

// ActiveMQBroker is a running ActiveMQ (tests kill it).
type ActiveMQBroker struct {
	Broker
	// Startup is how long the start took, from the call to ready.
	Startup time.Duration
	// Addr is the STOMP connector's host:port.
	Addr string
	// Container is set for the container source.
	Container *Container
	proc      *amqProc
}

// Stop stops the broker and removes everything it started.
func (a *ActiveMQBroker) Stop(ctx context.Context) error {
	if a.Container != nil {
		return a.Container.Stop(ctx)
	}
	return a.proc.stop(ctx)
}

// Kill kills the broker at once, leaving its port dead (Stop still cleans
// up).
func (a *ActiveMQBroker) Kill(ctx context.Context) error {
	if a.Container != nil {
		return a.Container.Kill(ctx)
	}
	syscall.Kill(-a.proc.cmd.Process.Pid, syscall.SIGKILL)
	<-a.proc.exited
	waitGroupGone(a.proc.cmd.Process.Pid, 10*time.Second)
	return nil
}

// LogTail returns the broker's last n log lines, for test failures.
func (a *ActiveMQBroker) LogTail(n int) string {
	if a.Container != nil {
		s, err := a.Container.Logs(context.Background(), n)
		if err != nil {
			return fmt.Sprintf("(no broker log: %v)", err)
		}
		return s
	}
	lines := strings.Split(a.proc.out.tail(), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ActiveMQSource returns the source StartActiveMQ would use, or an
// *Unavailable saying why no ActiveMQ can start here. It starts nothing.
func ActiveMQSource(ctx context.Context) (string, error) { return activeMQSources.check(ctx) }

// activeMQSources: auto takes the processes where the container cannot
// run (they say what is missing).
var activeMQSources = &jvmSources{
	name: "activemq", title: "ActiveMQ", image: ActiveMQLocalImage, home: findActiveMQHome,
	use: "run `make brokers`, or use --broker activemq=stomp://HOST:PORT",
}

// findActiveMQHome finds the broker's home (bin/activemq.jar):
// RPCBENCH_ACTIVEMQ_HOME, else Debian's /usr/share/activemq.
func findActiveMQHome() (string, error) {
	home := os.Getenv("RPCBENCH_ACTIVEMQ_HOME")
	if home == "" {
		home = ActiveMQHome
	}
	if _, err := os.Stat(filepath.Join(home, "bin", "activemq.jar")); err != nil {
		return "", fmt.Errorf("activemq: no %s/bin/activemq.jar; run `make brokers` (installs Debian's activemq package) or use --broker activemq=stomp://HOST:PORT", home)
	}
	return home, nil
}

// StartActiveMQ starts an ActiveMQ broker as a local process.
func StartActiveMQ(ctx context.Context, opts StartOptions) (*ActiveMQBroker, error) {
	for k := range opts.Params {
		if _, ok := activeMQParams[k]; !ok {
			return nil, fmt.Errorf("activemq: unknown broker param %q (want source)", k)
		}
	}
	source, err := activeMQSources.resolve(ctx, opts.Params["source"])
	if err != nil {
		return nil, err
	}
	if source == SourceContainer {
		return startActiveMQContainer(ctx, opts)
	}
	start := time.Now()
	home, err := findActiveMQHome()
	if err != nil {
		return nil, &Unavailable{Reason: "skipped: " + err.Error()}
	}
	java, err := exec.LookPath("java")
	if err != nil {
		return nil, &Unavailable{Reason: "skipped: no java for the ActiveMQ process source; run `make brokers` (installs it)"}
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		a, err := startActiveMQOnce(ctx, opts, home, java, start)
		if err == nil {
			return a, nil
		}
		lastErr = err
		if ctx.Err() != nil || !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	return nil, lastErr
}

// activeMQConfig is the broker's activemq.xml.
func activeMQConfig(dir string, port int) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<!-- written by rpcbench for one broker run -->
<beans xmlns="http://www.springframework.org/schema/beans"
       xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
       xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans.xsd
                           http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="rpcbench" useJmx="false"
          persistent="true" dataDirectory="` + xmlEscape(filepath.Join(dir, "data")) + `" schedulerSupport="false">
    <managementContext><managementContext createConnector="false"/></managementContext>
    <persistenceAdapter>
      <kahaDB directory="` + xmlEscape(filepath.Join(dir, "data", "kahadb")) + `"/>
    </persistenceAdapter>
    <systemUsage>
      <systemUsage>
        <memoryUsage><memoryUsage percentOfJvmHeap="70"/></memoryUsage>
        <storeUsage><storeUsage limit="4 gb"/></storeUsage>
        <tempUsage><tempUsage limit="1 gb"/></tempUsage>
      </systemUsage>
    </systemUsage>
    <transportConnectors>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:` + strconv.Itoa(port) + `?transport.tcpNoDelay=true&amp;maximumConnections=1000"/>
    </transportConnectors>
  </broker>
</beans>
`
}

// activeMQLog4j is the broker's log4j.properties (Debian's build logs
// with log4j 1.2, found on activemq.classpath): INFO to stdout, which the
// run directory's stdout.log keeps.
const activeMQLog4j = `# written by rpcbench
log4j.rootLogger=INFO, stdout
log4j.logger.org.springframework=WARN
log4j.logger.org.apache.xbean=WARN
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=%d %-5p [%t] %c{1} - %m%n
`

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// amqProc is the broker's JVM (its own process group).
type amqProc struct {
	cmd      *exec.Cmd
	dir      string
	keepLogs bool
	exited   chan struct{}
	out      *lineLog
	once     sync.Once
	stopErr  error
}

func activeMQArgs(home, dir string) []string {
	args := strings.Fields(ActiveMQHeap)
	args = append(args, activeMQOpens...)
	args = append(args,
		"-Djava.awt.headless=true",
		"-Dlog4j.configuration=file:"+filepath.Join(dir, "conf", "log4j.properties"),
		"-Dactivemq.classpath="+filepath.Join(dir, "conf")+":"+filepath.Join(home, "lib")+"/",
		"-Dactivemq.home="+home,
		"-Dactivemq.base="+dir,
		"-Dactivemq.conf="+filepath.Join(dir, "conf"),
		"-Dactivemq.data="+filepath.Join(dir, "data"),
		"-Djava.io.tmpdir="+filepath.Join(dir, "tmp"),
		"-jar", filepath.Join(home, "bin", "activemq.jar"),
		"start", "xbean:file:"+filepath.Join(dir, "conf", "activemq.xml"))
	return args
}

func startActiveMQOnce(ctx context.Context, opts StartOptions, home, java string, start time.Time) (*ActiveMQBroker, error) {
	ports, err := FreePorts(1)
	if err != nil {
		return nil, err
	}
	port := ports[0]
	parent := opts.Dir
	if parent != "" {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp(parent, "rpcbench-activemq-")
	if err != nil {
		return nil, err
	}
	for _, d := range []string{"conf", "data", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "conf", "activemq.xml"), []byte(activeMQConfig(dir, port)), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "conf", "log4j.properties"), []byte(activeMQLog4j), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p := &amqProc{dir: dir, keepLogs: opts.Dir != "", exited: make(chan struct{}), out: newLineLog(60, " started")}
	logFile, err := os.Create(filepath.Join(dir, "stdout.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	p.out.file = logFile
	args := activeMQArgs(home, dir)
	cmd := exec.Command(java, args...)
	cmd.Dir = dir
	cmd.Env = os.Environ()
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := startTied(cmd, p.exited); err != nil {
		logFile.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("activemq: start java: %w", err)
	}
	p.cmd = cmd
	fail := func(err error) (*ActiveMQBroker, error) {
		msg := fmt.Sprintf("%v\n--- last log lines of activemq ---\n%s", err, p.out.tail())
		stopErr := p.stop(context.WithoutCancel(ctx))
		return nil, errors.Join(errors.New(msg), stopErr)
	}
	addr := net.JoinHostPort(Host, strconv.Itoa(port))
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	server, err := waitStomp(wctx, addr, p.exited)
	if err != nil {
		return fail(err)
	}
	a := &ActiveMQBroker{Addr: addr, Startup: time.Since(start), proc: p}
	u := url.URL{Scheme: "stomp", Host: addr}
	a.Broker = Broker{
		Kind:    "activemq",
		URL:     u.String(),
		Source:  SourceProcess,
		Version: ActiveMQServerVersion(server),
		CPU:     PidCPU(cmd.Process.Pid),
		PIDs:    PidTree(cmd.Process.Pid),
		Control: &processControl{name: "activemq", cmd: &p.cmd, exited: &p.exited, grace: 5 * time.Second,
			ready: func(ctx context.Context) error {
				_, err := waitStomp(ctx, addr, p.exited)
				return err
			}},
		Details: map[string]string{
			"server":    server,
			"home":      home,
			"dir":       dir,
			"store":     "KahaDB (defaults: journal fsync per write batch, concurrentStoreAndDispatchQueues=true)",
			"connector": "stomp://" + addr + "?transport.tcpNoDelay=true (no OpenWire connector, JMX off)",
			"jvm_opts":  ActiveMQHeap,
			"startup":   a.Startup.Round(time.Millisecond).String(),
		},
	}
	if v := javaVersion(java); v != "" {
		a.Details["jvm"] = v
	}
	return a, nil
}

// javaVersion is the first line of `java -version`.
func javaVersion(java string) string {
	out, err := exec.Command(java, "-version").CombinedOutput()
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}

// ActiveMQServerVersion is the version in a CONNECTED frame's server
// header ("ActiveMQ/5.17.2" -> "5.17.2"), or the header itself.
func ActiveMQServerVersion(server string) string {
	if _, v, ok := strings.Cut(server, "/"); ok && v != "" {
		return v
	}
	return server
}

// waitStomp retries a STOMP CONNECT to addr until it is answered with
// CONNECTED, the broker exits or ctx ends; it returns the server header.
func waitStomp(ctx context.Context, addr string, exited <-chan struct{}) (string, error) {
	var last error
	for {
		server, err := StompProbe(ctx, addr, "", "")
		if err == nil {
			return server, nil
		}
		last = err
		select {
		case <-exited:
			return "", fmt.Errorf("activemq: broker exited before it answered STOMP (%v)", last)
		case <-ctx.Done():
			return "", fmt.Errorf("activemq: no STOMP CONNECTED from %s: %v (%w)", addr, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// StompProbe sends one STOMP 1.2 CONNECT to addr (host:port) and returns
// the CONNECTED frame's server header; it disconnects at once.
func StompProbe(ctx context.Context, addr, login, passcode string) (string, error) {
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if dl, ok := dctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	f := "CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n"
	if login != "" || passcode != "" {
		f += "login:" + login + "\npasscode:" + passcode + "\n"
	}
	if _, err := c.Write([]byte(f + "\n\x00")); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	cmd, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	cmd = strings.TrimRight(cmd, "\r\n")
	server, message := "", ""
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "server":
			server = v
		case "message":
			message = v
		}
	}
	if cmd != "CONNECTED" {
		return "", fmt.Errorf("STOMP CONNECT answered with %s: %s", cmd, message)
	}
	c.Write([]byte("DISCONNECT\n\n\x00"))
	return server, nil
}

// stop ends the process group (SIGTERM, SIGKILL after 5 s), then removes
// the run directory (keeping the broker's stdout when it lives in
// StartOptions.Dir).
func (p *amqProc) stop(ctx context.Context) error {
	p.once.Do(func() {
		stopGroup(ctx, p.cmd.Process.Pid, p.exited, 5*time.Second)
		p.out.close()
		if p.keepLogs {
			p.stopErr = errors.Join(os.RemoveAll(filepath.Join(p.dir, "data")), os.RemoveAll(filepath.Join(p.dir, "tmp")))
		} else {
			p.stopErr = os.RemoveAll(p.dir)
		}
	})
	return p.stopErr
}

// ---- container source ----

// activeMQContainerDir is the broker's directory inside the container.
const activeMQContainerDir = "/var/lib/rpcbench-activemq"

// shellQuote quotes s for sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func startActiveMQContainer(ctx context.Context, opts StartOptions) (*ActiveMQBroker, error) {
	start := time.Now()
	if err := CheckEngine(ctx); err != nil {
		return nil, err
	}
	dir := activeMQContainerDir
	// the same java command as the process source; the configuration
	// comes in the environment (the image holds none)
	var cmd strings.Builder
	cmd.WriteString("mkdir -p " + dir + "/conf " + dir + "/data " + dir + "/tmp" +
		` && printf '%s' "$RPCBENCH_ACTIVEMQ_XML" > ` + dir + "/conf/activemq.xml" +
		` && printf '%s' "$RPCBENCH_ACTIVEMQ_LOG4J" > ` + dir + "/conf/log4j.properties" +
		" && java -version 2>&1 | head -n 1 | sed 's/^/rpcbench-jvm: /' && exec java")
	for _, a := range activeMQArgs(ActiveMQHome, dir) {
		cmd.WriteString(" " + shellQuote(a))
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := FreePorts(1)
		if err != nil {
			return nil, err
		}
		port := ports[0]
		c, err := StartContainer(ctx, ContainerSpec{
			Kind:   "activemq",
			Images: []Image{{Name: ActiveMQLocalImage, Local: true, Cmd: []string{"sh", "-c", cmd.String()}}},
			Env: map[string]string{
				"RPCBENCH_ACTIVEMQ_XML":   activeMQConfig(dir, port),
				"RPCBENCH_ACTIVEMQ_LOG4J": activeMQLog4j,
			},
			Ports:   ports,
			Network: HostNetwork,
			// BrokerService's "Apache ActiveMQ 5.17.2 (rpcbench, ID:...) started"
			ReadyLog:     ") started",
			ReadyPorts:   ports,
			StartTimeout: 2 * time.Minute,
			StopTimeout:  5 * time.Second,
			Keep:         opts.Params["keep"] == "true",
			LogLines:     40,
		})
		if err != nil {
			lastErr = err
			if _, ok := IsUnavailable(err); ok || ctx.Err() != nil || !strings.Contains(err.Error(), "Address already in use") {
				return nil, err
			}
			continue // lost a port race: new ports
		}
		addr := net.JoinHostPort(Host, strconv.Itoa(port))
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		server, err := waitStomp(wctx, addr, nil)
		cancel()
		if err != nil {
			logs, _ := c.Logs(context.WithoutCancel(ctx), 40)
			return nil, errors.Join(fmt.Errorf("%w\n--- last log lines of activemq ---\n%s", err, logs), c.Stop(ctx))
		}
		a := &ActiveMQBroker{Addr: addr, Startup: time.Since(start), Container: c}
		u := url.URL{Scheme: "stomp", Host: addr}
		a.Broker = Broker{
			Kind:    "activemq",
			URL:     u.String(),
			Source:  SourceContainer,
			Image:   c.Image,
			Version: ActiveMQServerVersion(server),
			CPU:     c.CPU,
			PIDs:    c.PIDs,
			Control: &containerControlStomp{containerControl{c: c, ports: ports}, addr},
			Details: map[string]string{
				"server":    server,
				"network":   string(HostNetwork),
				"container": c.Name,
				"store":     "KahaDB in the container (defaults: journal fsync per write batch, concurrentStoreAndDispatchQueues=true)",
				"connector": "stomp://" + addr + "?transport.tcpNoDelay=true (no OpenWire connector, JMX off)",
				"jvm_opts":  ActiveMQHeap,
				"startup":   a.Startup.Round(time.Millisecond).String(),
			},
		}
		if logs, err := c.Logs(ctx, 200); err == nil {
			for _, line := range strings.Split(logs, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "rpcbench-jvm: "); ok {
					a.Details["jvm"] = v
				}
			}
		}
		return a, nil
	}
	return nil, lastErr
}

// containerControlStomp is a container's Control whose Start also waits
// for a STOMP CONNECTED (the port opens before the broker serves).
type containerControlStomp struct {
	containerControl
	addr string
}

func (cc *containerControlStomp) Start(ctx context.Context) error {
	if err := cc.containerControl.Start(ctx); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, restartTimeout)
	defer cancel()
	_, err := waitStomp(rctx, cc.addr, nil)
	return err
}
