// A line-oriented front end to HashiCorp Serf's coordinate package, so that the tests can hand
// Serf and jetwire the same inputs. One command per line on stdin, one answer line on stdout.
// Floats are printed shortest-exact ('g', -1), coordinates as "dim v1 .. vN error adjustment height".
//
//	config DIM ERRMAX CE CC WINDOW HMIN FILTER RHO   sets the configuration later commands use
//	client ID                                       a new client with the current configuration
//	set ID COORD                                    Client.SetCoordinate
//	update ID NODE RTT_NS COORD                     Client.Update: the new coordinate, or "error ..."
//	get ID                                          Client.GetCoordinate
//	forget ID NODE                                  Client.ForgetNode
//	resets ID                                       Client.Stats().Resets
//	distance COORD COORD                            Coordinate.DistanceTo, in nanoseconds
//	force FORCE COORD COORD                         Coordinate.ApplyForce
//	int63 SEED N                                    N values of rand.New(rand.NewSource(SEED)).Int63()
//	seed SEED                                       rand.Seed: the generator Serf draws coincident points' directions from
//	truth SCENARIO                                  the scenario's matrix in nanoseconds, row by row
//	simulate SCENARIO                               Serf's Simulate, then Evaluate: "avg max", then each coordinate
//	bench N                                         N updates of one client (8 dimensions), the time taken in ns
package main

import (
	"bufio"
	"fmt"
	"math"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/serf/coordinate"
)

var (
	out     = bufio.NewWriter(os.Stdout)
	config  = coordinate.DefaultConfig()
	clients = map[string]*coordinate.Client{}
)

func num(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		panic(err)
	}
	return f
}

func integer(s string) int64 {
	i, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic(err)
	}
	return i
}

// coord reads a coordinate from the front of args and returns the rest.
func coord(args []string) (*coordinate.Coordinate, []string) {
	dim := int(integer(args[0]))
	c := &coordinate.Coordinate{Vec: make([]float64, dim)}
	for i := 0; i < dim; i++ {
		c.Vec[i] = num(args[1+i])
	}
	c.Error, c.Adjustment, c.Height = num(args[1+dim]), num(args[2+dim]), num(args[3+dim])
	return c, args[4+dim:]
}

func format(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func show(c *coordinate.Coordinate) string {
	parts := []string{strconv.Itoa(len(c.Vec))}
	for _, v := range c.Vec {
		parts = append(parts, format(v))
	}
	parts = append(parts, format(c.Error), format(c.Adjustment), format(c.Height))
	return strings.Join(parts, " ")
}

func truth(name string) ([][]time.Duration, *coordinate.Config, []*coordinate.Coordinate) {
	conf := coordinate.DefaultConfig()
	var start []*coordinate.Coordinate
	var t [][]time.Duration
	switch name {
	case "line":
		t = coordinate.GenerateLine(10, 10*time.Millisecond)
	case "grid":
		t = coordinate.GenerateGrid(25, 10*time.Millisecond)
	case "split":
		t = coordinate.GenerateSplit(25, time.Millisecond, 10*time.Millisecond)
	case "height":
		conf.Dimensionality = 2
		t = coordinate.GenerateCircle(25, 100*time.Millisecond)
	case "random":
		t = coordinate.GenerateRandom(25, 100*time.Millisecond, 10*time.Millisecond)
	case "drift":
		// As Serf's TestPerformance_Drift builds it.
		conf.Dimensionality = 2
		dist := 500 * time.Millisecond
		t = make([][]time.Duration, 4)
		for i := range t {
			t[i] = make([]time.Duration, 4)
		}
		for i := 0; i < 4; i++ {
			for j := i + 1; j < 4; j++ {
				rtt := dist
				if i%2 == 0 && j%2 == 0 {
					rtt = time.Duration(math.Sqrt2 * float64(rtt))
				}
				t[i][j], t[j][i] = rtt, rtt
			}
		}
		s := dist.Seconds()
		for _, vec := range [][]float64{{0, 0}, {0, s}, {s, s}, {s, s}} {
			c := coordinate.NewCoordinate(conf)
			c.Vec = vec
			start = append(start, c)
		}
	default:
		panic("unknown scenario " + name)
	}
	return t, conf, start
}

func run(args []string) string {
	switch args[0] {
	case "config":
		config = &coordinate.Config{
			Dimensionality: uint(integer(args[1])), VivaldiErrorMax: num(args[2]), VivaldiCE: num(args[3]),
			VivaldiCC: num(args[4]), AdjustmentWindowSize: uint(integer(args[5])), HeightMin: num(args[6]),
			LatencyFilterSize: uint(integer(args[7])), GravityRho: num(args[8]),
		}
		return "ok"
	case "client":
		c, err := coordinate.NewClient(config)
		if err != nil {
			return "error " + err.Error()
		}
		clients[args[1]] = c
		return "ok"
	case "set":
		c, _ := coord(args[2:])
		if err := clients[args[1]].SetCoordinate(c); err != nil {
			return "error " + err.Error()
		}
		return "ok"
	case "update":
		c, _ := coord(args[4:])
		result, err := clients[args[1]].Update(args[2], c, time.Duration(integer(args[3])))
		if err != nil {
			return "error " + err.Error()
		}
		return show(result)
	case "get":
		return show(clients[args[1]].GetCoordinate())
	case "forget":
		clients[args[1]].ForgetNode(args[2])
		return "ok"
	case "resets":
		return strconv.Itoa(clients[args[1]].Stats().Resets)
	case "distance":
		a, rest := coord(args[1:])
		b, _ := coord(rest)
		return strconv.FormatInt(int64(a.DistanceTo(b)), 10)
	case "force":
		a, rest := coord(args[2:])
		b, _ := coord(rest)
		return show(a.ApplyForce(config, num(args[1]), b))
	case "int63":
		r := rand.New(rand.NewSource(integer(args[1])))
		n := int(integer(args[2]))
		parts := make([]string, n)
		for i := range parts {
			parts[i] = strconv.FormatInt(r.Int63(), 10)
		}
		return strings.Join(parts, " ")
	case "seed":
		rand.Seed(integer(args[1]))
		return "ok"
	case "truth":
		t, _, _ := truth(args[1])
		var parts []string
		for _, row := range t {
			for _, rtt := range row {
				parts = append(parts, strconv.FormatInt(int64(rtt), 10))
			}
		}
		return strings.Join(parts, " ")
	case "simulate":
		t, conf, start := truth(args[1])
		cs, err := coordinate.GenerateClients(len(t), conf)
		if err != nil {
			return "error " + err.Error()
		}
		for i, c := range start {
			if err := cs[i].SetCoordinate(c); err != nil {
				return "error " + err.Error()
			}
		}
		for _, cycles := range args[2:] { // drift runs twice, each reseeding as Serf's test does
			coordinate.Simulate(cs, t, int(integer(cycles)))
		}
		// Evaluate prints its own summary: keep it off the answer stream.
		stdout := os.Stdout
		os.Stdout = os.Stderr
		stats := coordinate.Evaluate(cs, t)
		os.Stdout = stdout
		parts := []string{format(stats.ErrorAvg) + " " + format(stats.ErrorMax)}
		for _, c := range cs {
			parts = append(parts, show(c.GetCoordinate()))
		}
		return strings.Join(parts, ";")
	case "bench":
		n := int(integer(args[1]))
		conf := coordinate.DefaultConfig()
		c, _ := coordinate.NewClient(conf)
		others := make([]*coordinate.Coordinate, 16)
		for k := range others {
			others[k] = coordinate.NewCoordinate(conf)
			for d := range others[k].Vec {
				others[k].Vec[d] = 0.001 * float64((k*7+d*3)%11)
			}
		}
		names := make([]string, len(others))
		for k := range names {
			names[k] = "node_" + strconv.Itoa(k)
		}
		begin := time.Now()
		for i := 0; i < n; i++ {
			k := i % len(others)
			if _, err := c.Update(names[k], others[k], time.Duration(5+k)*time.Millisecond); err != nil {
				return "error " + err.Error()
			}
		}
		return strconv.FormatInt(int64(time.Since(begin)), 10)
	}
	panic("unknown command " + args[0])
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	for in.Scan() {
		args := strings.Fields(in.Text())
		if len(args) == 0 {
			continue
		}
		fmt.Fprintln(out, run(args))
		out.Flush()
	}
}
