package syncbuf_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/eligo-dev/eligo/internal/syncbuf"
)

// TestBuffer: concurrent writes all land, whole, while a reader reads (run with -race).
func TestBuffer(t *testing.T) {
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				fmt.Fprintf(&b, "w%d-%d\n", i, j)
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 8*50 {
		t.Fatalf("%d lines written, want %d", len(lines), 8*50)
	}
	if !strings.Contains(b.String(), "w7-49\n") {
		t.Error("a write is missing")
	}
}
