package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
)

// serveAdmin serves the /_sandbox/ endpoints. They are meant for tests and demos on a
// trusted network: they are not authenticated.
func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case StatsPath:
		if !allow(w, r, http.MethodGet) {
			return
		}
		writeJSON(w, http.StatusOK, s.Stats())
	case FaultsPath:
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, s.Faults())
		case http.MethodPost, http.MethodPut:
			body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
			if err != nil {
				http.Error(w, "cannot read body", http.StatusBadRequest)
				return
			}
			var f Faults
			if err := json.Unmarshal(body, &f); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if err := s.SetFaults(f); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			writeJSON(w, http.StatusOK, s.Faults())
		case http.MethodDelete:
			s.faults.Store(nil)
			writeJSON(w, http.StatusOK, s.Faults())
		default:
			w.Header().Set("Allow", "GET, POST, PUT, DELETE")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	case ResetPath:
		if !allow(w, r, http.MethodPost) {
			return
		}
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	case HistoryPath:
		if !allow(w, r, http.MethodGet) {
			return
		}
		q := r.URL.Query()
		shop, group := q.Get("shop_id"), q.Get("crowd_group_id")
		if shop == "" || group == "" {
			http.Error(w, "shop_id and crowd_group_id are required", http.StatusBadRequest)
			return
		}
		writeJSON(w, http.StatusOK, s.History(shop, group))
	}
}

func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// readStrictJSON decodes r's body (at most 64 KiB) into v, unknown fields being an error. On
// failure it answers 400 naming what and returns false.
func readStrictJSON(w http.ResponseWriter, r *http.Request, what string, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		http.Error(w, what+": "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "cannot encode", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
