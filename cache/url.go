package cache

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ParseURL turns ELIGO_REDIS_URL into options for redis.NewUniversalClient. The forms are:
//
//	redis://[user:password@]host[:port][/db][?option=value…]        standalone
//	rediss://…                                                      standalone over TLS
//	unix://[user:password@]/path/to/redis.sock[?db=N&…]             standalone on a unix socket
//	redis-sentinel://[user:password@]s1:26379,s2:26379[/db]?master=NAME[&sentinel_username=U&sentinel_password=P&…]
//	rediss-sentinel://…                                             Sentinel, TLS to every node
//	redis-cluster://[user:password@]n1:6379,n2:6379[?…]             Cluster (one seed is enough)
//	rediss-cluster://…                                              Cluster over TLS
//
// user:password is the Redis ACL user of the data nodes (password alone: "redis://:secret@h").
// For Sentinel, the sentinels' own credentials, if any, go in sentinel_username and
// sentinel_password. The port defaults to 6379 (26379 for sentinels). Other query options
// are go-redis's own, in snake case (dial_timeout=1s, pool_size=20, max_retries=2,
// skip_verify=true, …); unknown ones are an error. ContextTimeoutEnabled is always set,
// so that Config.OpTimeout bounds every operation. TLS verifies the server against the
// system roots; to trust a private CA, set RootCAs on the returned TLSConfig. Errors never
// repeat the URL, which may hold a password.
func ParseURL(rawURL string) (*redis.UniversalOptions, error) {
	// A host list "h1:p1,h2:p2" is not a valid URL host: cut it out before parsing.
	hosts := ""
	if scheme, rest, ok := strings.Cut(rawURL, "://"); ok && (strings.HasSuffix(scheme, "-sentinel") || strings.HasSuffix(scheme, "-cluster")) {
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		userinfo, list := "", rest[:end]
		if at := strings.LastIndex(list, "@"); at >= 0 {
			userinfo, list = list[:at+1], list[at+1:]
		}
		hosts = list
		rawURL = scheme + "://" + userinfo + "hosts.invalid" + rest[end:]
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password included
		}
		return nil, fmt.Errorf("parse redis URL: %w", err)
	}
	var o *redis.UniversalOptions
	switch u.Scheme {
	case "redis", "rediss", "unix":
		o, err = parseStandalone(u)
	case "redis-sentinel", "rediss-sentinel":
		o, err = parseSentinel(u, hosts)
	case "redis-cluster", "rediss-cluster":
		o, err = parseCluster(u, hosts)
	default:
		return nil, fmt.Errorf("parse redis URL: unsupported scheme %q (want redis, rediss, unix, redis-sentinel, rediss-sentinel, redis-cluster or rediss-cluster)", u.Scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("parse redis URL: %w", err)
	}
	o.ContextTimeoutEnabled = true
	return o, nil
}

func parseStandalone(u *url.URL) (*redis.UniversalOptions, error) {
	s, err := redis.ParseURL(u.String())
	if err != nil {
		return nil, err
	}
	o := &redis.UniversalOptions{
		Addrs:           []string{s.Addr},
		ClientName:      s.ClientName,
		DB:              s.DB,
		Protocol:        s.Protocol,
		Username:        s.Username,
		Password:        s.Password,
		MaxRetries:      s.MaxRetries,
		MinRetryBackoff: s.MinRetryBackoff,
		MaxRetryBackoff: s.MaxRetryBackoff,
		DialTimeout:     s.DialTimeout,
		ReadTimeout:     s.ReadTimeout,
		WriteTimeout:    s.WriteTimeout,
		PoolFIFO:        s.PoolFIFO,
		PoolSize:        s.PoolSize,
		PoolTimeout:     s.PoolTimeout,
		MinIdleConns:    s.MinIdleConns,
		MaxIdleConns:    s.MaxIdleConns,
		MaxActiveConns:  s.MaxActiveConns,
		ConnMaxIdleTime: s.ConnMaxIdleTime,
		ConnMaxLifetime: s.ConnMaxLifetime,
		TLSConfig:       s.TLSConfig,
	}
	if s.Network == "unix" {
		// UniversalOptions has no Network field: dial the socket explicitly.
		o.Dialer = unixDialer(s.Addr)
	}
	return o, nil
}

func unixDialer(path string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}
}

// splitHosts splits a comma-separated host list, adding defaultPort where missing.
func splitHosts(hosts string, defaultPort string) ([]string, error) {
	var addrs []string
	for _, h := range strings.Split(hosts, ",") {
		if h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(strings.Trim(h, "[]"), defaultPort)
		}
		addrs = append(addrs, h)
	}
	if len(addrs) == 0 {
		return nil, errors.New("no host in URL")
	}
	return addrs, nil
}

// rewrite returns a go-redis URL for u's first host with the other hosts as addr=
// parameters, the scheme redis or rediss and the given user info.
func rewrite(u *url.URL, addrs []string, q url.Values, user *url.Userinfo) string {
	scheme := "redis"
	if strings.HasPrefix(u.Scheme, "rediss") {
		scheme = "rediss"
	}
	for _, a := range addrs[1:] {
		q.Add("addr", a)
	}
	r := url.URL{Scheme: scheme, User: user, Host: addrs[0], Path: u.Path, RawQuery: q.Encode()}
	return r.String()
}

func parseSentinel(u *url.URL, hosts string) (*redis.UniversalOptions, error) {
	addrs, err := splitHosts(hosts, "26379")
	if err != nil {
		return nil, err
	}
	q := u.Query()
	master := q.Get("master")
	if master == "" {
		return nil, errors.New("sentinel URL needs ?master=NAME")
	}
	q.Del("master")
	q.Set("master_name", master)
	// go-redis takes the sentinel credentials from the user info and the data node's from
	// username/password parameters; Eligo's URL is the other way round.
	var sentinelUser *url.Userinfo
	if su, sp := q.Get("sentinel_username"), q.Get("sentinel_password"); su != "" || sp != "" {
		sentinelUser = url.UserPassword(su, sp)
	}
	q.Del("sentinel_username")
	q.Del("sentinel_password")
	if u.User != nil {
		q.Set("username", u.User.Username())
		if p, ok := u.User.Password(); ok {
			q.Set("password", p)
		}
	}
	f, err := redis.ParseFailoverURL(rewrite(u, addrs, q, sentinelUser))
	if err != nil {
		return nil, err
	}
	clearServerName(f.TLSConfig)
	return &redis.UniversalOptions{
		Addrs:            f.SentinelAddrs,
		MasterName:       f.MasterName,
		SentinelUsername: f.SentinelUsername,
		SentinelPassword: f.SentinelPassword,
		ClientName:       f.ClientName,
		DB:               f.DB,
		Protocol:         f.Protocol,
		Username:         f.Username,
		Password:         f.Password,
		MaxRetries:       f.MaxRetries,
		MinRetryBackoff:  f.MinRetryBackoff,
		MaxRetryBackoff:  f.MaxRetryBackoff,
		DialTimeout:      f.DialTimeout,
		ReadTimeout:      f.ReadTimeout,
		WriteTimeout:     f.WriteTimeout,
		PoolFIFO:         f.PoolFIFO,
		PoolSize:         f.PoolSize,
		PoolTimeout:      f.PoolTimeout,
		MinIdleConns:     f.MinIdleConns,
		MaxIdleConns:     f.MaxIdleConns,
		MaxActiveConns:   f.MaxActiveConns,
		ConnMaxIdleTime:  f.ConnMaxIdleTime,
		ConnMaxLifetime:  f.ConnMaxLifetime,
		TLSConfig:        f.TLSConfig,
		RouteByLatency:   f.RouteByLatency,
		RouteRandomly:    f.RouteRandomly,
	}, nil
}

func parseCluster(u *url.URL, hosts string) (*redis.UniversalOptions, error) {
	addrs, err := splitHosts(hosts, "6379")
	if err != nil {
		return nil, err
	}
	if u.Path != "" && u.Path != "/" {
		return nil, errors.New("cluster URL cannot select a database")
	}
	c, err := redis.ParseClusterURL(rewrite(u, addrs, u.Query(), u.User))
	if err != nil {
		return nil, err
	}
	clearServerName(c.TLSConfig)
	return &redis.UniversalOptions{
		Addrs:           c.Addrs,
		IsClusterMode:   true,
		ClientName:      c.ClientName,
		Protocol:        c.Protocol,
		Username:        c.Username,
		Password:        c.Password,
		MaxRetries:      c.MaxRetries,
		MinRetryBackoff: c.MinRetryBackoff,
		MaxRetryBackoff: c.MaxRetryBackoff,
		DialTimeout:     c.DialTimeout,
		ReadTimeout:     c.ReadTimeout,
		WriteTimeout:    c.WriteTimeout,
		PoolFIFO:        c.PoolFIFO,
		PoolSize:        c.PoolSize,
		PoolTimeout:     c.PoolTimeout,
		MinIdleConns:    c.MinIdleConns,
		MaxIdleConns:    c.MaxIdleConns,
		MaxActiveConns:  c.MaxActiveConns,
		ConnMaxIdleTime: c.ConnMaxIdleTime,
		ConnMaxLifetime: c.ConnMaxLifetime,
		TLSConfig:       c.TLSConfig,
		MaxRedirects:    c.MaxRedirects,
		ReadOnly:        c.ReadOnly,
		RouteByLatency:  c.RouteByLatency,
		RouteRandomly:   c.RouteRandomly,
	}, nil
}

// clearServerName lets each TLS connection verify the name of the node it dials: with
// several nodes (and a master found through Sentinel) the first URL host is not the right
// name for all of them.
func clearServerName(c *tls.Config) {
	if c != nil {
		c.ServerName = ""
		c.MinVersion = max(c.MinVersion, tls.VersionTLS12)
	}
}
