package promreg_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eligo-dev/eligo/internal/promreg"
)

// TestRegister: a second collector of the same description gets the first one back; one of
// the same name but another shape is refused.
func TestRegister(t *testing.T) {
	reg := prometheus.NewRegistry()
	newVec := func() *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"a"})
	}
	first, err := promreg.Register(reg, newVec())
	if err != nil {
		t.Fatal(err)
	}
	second, err := promreg.Register(reg, newVec())
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Error("a second collector of the same description was not given the registered one")
	}
	second.WithLabelValues("v").Inc()
	if got := first.WithLabelValues("v"); got == nil {
		t.Fatal("no series")
	}
	other := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"b"})
	got, err := promreg.Register(reg, other)
	if err == nil {
		t.Error("a collector of another shape under the same name was registered")
	}
	if got != other {
		t.Error("a refused collector was not returned as given")
	}
}
