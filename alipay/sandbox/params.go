package sandbox

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/url"
	"strings"
)

// Limits of the request parser.
const (
	// DefaultMaxBodyBytes is the largest request body the gateway reads by default.
	DefaultMaxBodyBytes = 1 << 20
	// maxParams bounds the number of parameters of one request.
	maxParams = 64
)

// Request parser failures; each is answered 40002 isv.invalid-parameter.
var (
	errBadEncoding   = errors.New("request parameters are not valid URL encoding")
	errDuplicate     = errors.New("a parameter is given more than once")
	errTooMany       = errors.New("too many parameters")
	errBadMultipart  = errors.New("multipart body is malformed")
	errBodyTooLarge  = errors.New("request body is too large")
	errBadBody       = errors.New("request body cannot be read")
	errEmptyParamKey = errors.New("a parameter has an empty name")
)

// parseParams merges the parameters of the URL query and of the body (URL-encoded form, or
// multipart form fields; other bodies carry no parameters), decoding "+" as a space. A name
// given twice, in either place, is an error: no client sends one, and the signature would be
// ambiguous. File parts of a multipart body are not parameters and are ignored.
func parseParams(rawQuery, contentType string, body []byte) (map[string]string, error) {
	p := make(map[string]string, 16)
	if err := addURLEncoded(p, rawQuery); err != nil {
		return p, err
	}
	if len(body) == 0 {
		return p, nil
	}
	mediaType, mp, err := mime.ParseMediaType(contentType)
	if err != nil {
		return p, nil
	}
	switch strings.ToLower(mediaType) {
	case "application/x-www-form-urlencoded":
		return p, addURLEncoded(p, string(body))
	case "multipart/form-data":
		boundary := mp["boundary"]
		if boundary == "" {
			return p, errBadMultipart
		}
		r := multipart.NewReader(bytes.NewReader(body), boundary)
		for {
			part, err := r.NextRawPart()
			if errors.Is(err, io.EOF) {
				return p, nil
			}
			if err != nil {
				return p, errBadMultipart
			}
			name := part.FormName()
			if name == "" || part.FileName() != "" {
				continue
			}
			v, err := io.ReadAll(part)
			if err != nil {
				return p, errBadMultipart
			}
			if err := add(p, name, string(v)); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

func addURLEncoded(p map[string]string, s string) error {
	for s != "" {
		var kv string
		kv, s, _ = strings.Cut(s, "&")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return errBadEncoding
		}
		if err := add(p, k, v); err != nil {
			return err
		}
	}
	return nil
}

func add(p map[string]string, k, v string) error {
	if k == "" {
		return errEmptyParamKey
	}
	if _, dup := p[k]; dup {
		return errDuplicate
	}
	if len(p) >= maxParams {
		return errTooMany
	}
	p[k] = v
	return nil
}
