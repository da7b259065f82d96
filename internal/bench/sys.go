package bench

import (
	"bufio"
	"bytes"
	"math"
	"math/bits"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cpuSeconds is the process's user+system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// procStatusMB returns a "Vm…:" field of /proc/self/status in MiB (0 when unavailable).
func procStatusMB(field string) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, field+":") {
			continue
		}
		f := strings.Fields(strings.TrimPrefix(line, field+":"))
		if len(f) == 0 {
			return 0
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0
		}
		return kb / 1024
	}
	return 0
}

func rssMB() float64 { return procStatusMB("VmRSS") }

// rssSampler records the peak RSS between start and stop.
type rssSampler struct {
	mu   sync.Mutex
	peak float64
	stop chan struct{}
	done chan struct{}
}

func startRSSSampler(every time.Duration) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{}), peak: rssMB()}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				v := rssMB()
				s.mu.Lock()
				s.peak = max(s.peak, v)
				s.mu.Unlock()
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak.
func (s *rssSampler) Stop() float64 {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.peak, rssMB())
}

// machine describes this host; natsVersion comes from the connection.
func machine(natsVersion string) Machine {
	m := Machine{NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		NATSVersion: natsVersion}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// histogram is a log-linear latency histogram in microseconds: 64 sub-buckets per power of
// two (under 1.6% relative error), fixed size, safe for concurrent use.
type histogram struct {
	mu     sync.Mutex
	counts [64 * 40]uint64
	n      uint64
	max    uint64
}

const histSub = 64

func histIndex(us uint64) int {
	if us < histSub {
		return int(us)
	}
	exp := bits.Len64(us) - 7 // us >> exp is in [64, 128)
	return (exp+1)*histSub + int(us>>uint(exp)) - histSub
}

// histValue is the lower bound of bucket i, in microseconds.
func histValue(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	exp := i/histSub - 1
	return uint64(i%histSub+histSub) << uint(exp)
}

func (h *histogram) record(d time.Duration) {
	us := max(0, d.Microseconds())
	i := min(histIndex(uint64(us)), len(h.counts)-1)
	h.mu.Lock()
	h.counts[i]++
	h.n++
	h.max = max(h.max, uint64(us))
	h.mu.Unlock()
}

// latency returns the percentiles in milliseconds.
func (h *histogram) latency() Latency {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return Latency{}
	}
	q := func(p float64) float64 {
		rank := uint64(math.Ceil(p * float64(h.n)))
		var seen uint64
		for i, c := range h.counts {
			seen += c
			if seen >= rank && c > 0 {
				return float64(histValue(i)) / 1000
			}
		}
		return float64(h.max) / 1000
	}
	round := func(v float64) float64 { return math.Round(v*1000) / 1000 }
	return Latency{P50: round(q(0.50)), P99: round(q(0.99)), P999: round(q(0.999)), Max: round(float64(h.max) / 1000)}
}
