package cache_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/eligo-dev/eligo/cache"
)

// parsed is the part of redis.UniversalOptions that ParseURL is responsible for.
type parsed struct {
	Addrs              []string
	DB                 int
	Username, Password string
	SentinelUsername   string
	SentinelPassword   string
	MasterName         string
	Cluster            bool
	TLS                bool
	ServerName         string
	Unix               bool
	DialTimeout        time.Duration
	PoolSize           int
	ContextTimeout     bool
	Client             string // the client type NewUniversalClient builds
}

func summarize(o *redis.UniversalOptions) parsed {
	p := parsed{
		Addrs: o.Addrs, DB: o.DB, Username: o.Username, Password: o.Password,
		SentinelUsername: o.SentinelUsername, SentinelPassword: o.SentinelPassword,
		MasterName: o.MasterName, Cluster: o.IsClusterMode, TLS: o.TLSConfig != nil,
		Unix: o.Dialer != nil, DialTimeout: o.DialTimeout, PoolSize: o.PoolSize,
		ContextTimeout: o.ContextTimeoutEnabled,
	}
	if o.TLSConfig != nil {
		p.ServerName = o.TLSConfig.ServerName
	}
	c := redis.NewUniversalClient(o) // does not connect
	defer c.Close()
	switch c.(type) {
	case *redis.Client:
		p.Client = "single"
		if o.MasterName != "" {
			p.Client = "failover"
		}
	case *redis.ClusterClient:
		p.Client = "cluster"
	default:
		p.Client = "other"
	}
	return p
}

func TestParseURL(t *testing.T) {
	tests := []struct {
		name string
		url  string
		want parsed
	}{
		{"standalone with db", "redis://cache.internal:6380/2",
			parsed{Addrs: []string{"cache.internal:6380"}, DB: 2, ContextTimeout: true, Client: "single"}},
		{"standalone default port", "redis://cache.internal",
			parsed{Addrs: []string{"cache.internal:6379"}, ContextTimeout: true, Client: "single"}},
		{"password only", "redis://:s3cret@cache.internal/0",
			parsed{Addrs: []string{"cache.internal:6379"}, Password: "s3cret", ContextTimeout: true, Client: "single"}},
		{"acl user over tls", "rediss://eligo:pa%40ss@cache.example.com:6380/1",
			parsed{Addrs: []string{"cache.example.com:6380"}, DB: 1, Username: "eligo", Password: "pa@ss",
				TLS: true, ServerName: "cache.example.com", ContextTimeout: true, Client: "single"}},
		{"go-redis options", "redis://h?dial_timeout=250ms&pool_size=7",
			parsed{Addrs: []string{"h:6379"}, DialTimeout: 250 * time.Millisecond, PoolSize: 7, ContextTimeout: true, Client: "single"}},
		{"unix socket", "unix:///run/redis/redis.sock?db=3",
			parsed{Addrs: []string{"/run/redis/redis.sock"}, DB: 3, Unix: true, ContextTimeout: true, Client: "single"}},
		{"sentinel", "redis-sentinel://eligo:pw@s1,s2:26380/4?master=mymaster&sentinel_username=sen&sentinel_password=spw",
			parsed{Addrs: []string{"s1:26379", "s2:26380"}, DB: 4, Username: "eligo", Password: "pw",
				SentinelUsername: "sen", SentinelPassword: "spw", MasterName: "mymaster", ContextTimeout: true, Client: "failover"}},
		{"sentinel over tls", "rediss-sentinel://s1:26379?master=m",
			parsed{Addrs: []string{"s1:26379"}, MasterName: "m", TLS: true, ContextTimeout: true, Client: "failover"}},
		{"cluster", "redis-cluster://eligo:pw@n1:7000,n2:7001,n3",
			parsed{Addrs: []string{"n1:7000", "n2:7001", "n3:6379"}, Username: "eligo", Password: "pw",
				Cluster: true, ContextTimeout: true, Client: "cluster"}},
		{"ipv6 cluster", "redis-cluster://[::1]:7000,[fd00::2]",
			parsed{Addrs: []string{"[::1]:7000", "[fd00::2]:6379"}, Cluster: true, ContextTimeout: true, Client: "cluster"}},
		{"single-seed cluster over tls", "rediss-cluster://cfg.example.com:6379?pool_size=3",
			parsed{Addrs: []string{"cfg.example.com:6379"}, Cluster: true, TLS: true, PoolSize: 3, ContextTimeout: true, Client: "cluster"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := cache.ParseURL(tt.url)
			if err != nil {
				t.Fatalf("ParseURL(%q): %v", tt.url, err)
			}
			if diff := cmp.Diff(tt.want, summarize(o)); diff != "" {
				t.Fatalf("ParseURL(%q) mismatch (-want +got):\n%s", tt.url, diff)
			}
		})
	}
}

func TestParseURLErrors(t *testing.T) {
	const secret = "hunter2-secret"
	tests := []struct {
		name string
		url  string
	}{
		{"unknown scheme", "http://" + secret + "@h"},
		{"malformed", "redis://u:" + secret + "@h:port/0"},
		{"control character", "redis://u:" + secret + "@h/\x7f\x00"},
		{"sentinel without master", "redis-sentinel://u:" + secret + "@s1"},
		{"cluster with db", "redis-cluster://u:" + secret + "@n1/2"},
		{"unknown option", "redis://u:" + secret + "@h?bogus=1"},
		{"bad db", "redis://u:" + secret + "@h/x"},
		{"no host", "redis-cluster://,"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := cache.ParseURL(tt.url)
			if err == nil {
				t.Fatalf("ParseURL(%q) = %+v; want an error", tt.url, o)
			}
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error %q repeats the password", err)
			}
			var ue interface{ URL() string }
			if errors.As(err, &ue) {
				t.Fatalf("error %q carries a URL", err)
			}
		})
	}
}
