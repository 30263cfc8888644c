package api

import (
	"bytes"
	"net"
	"net/url"
	"sync"

	"github.com/batonhq/baton/apitype"
)

// MalformedURLPath is where RequestLineListener sends a request whose
// target is not a valid URL; the server answers it with a 400 in the JSON
// error shape. The original target is in the "target" query parameter.
const MalformedURLPath = apitype.Prefix + "/.malformed-url"

// maxRequestLine bounds how much of a connection's start is examined.
const maxRequestLine = 16 << 10

// RequestLineListener wraps ln so that the first request of each
// connection whose target is not a valid URL (a bad percent-escape such as
// /api/v1/runs/%ZZ) is sent to MalformedURLPath instead. Go's HTTP server
// answers such requests itself, with a plain-text "400 Bad Request" that no
// handler can change; this way the API answers them in its JSON error
// shape. Later requests on a kept-alive connection are left alone (the
// framing of earlier bodies is not parsed); clients that reuse
// connections, like Baton's, escape their URLs.
func RequestLineListener(ln net.Listener) net.Listener { return requestLineListener{ln} }

type requestLineListener struct{ net.Listener }

func (l requestLineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &requestLineConn{Conn: c}, nil
}

type requestLineConn struct {
	net.Conn
	mu      sync.Mutex
	checked bool
	pending []byte
}

func (c *requestLineConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		c.mu.Unlock()
		return n, nil
	}
	if c.checked {
		c.mu.Unlock()
		return c.Conn.Read(p)
	}
	defer c.mu.Unlock()
	var buf []byte
	chunk := make([]byte, 4096)
	for {
		n, err := c.Conn.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if bytes.IndexByte(buf, '\n') >= 0 || len(buf) >= maxRequestLine || err != nil {
			c.checked = true
			c.pending = FixRequestLine(buf)
			m := copy(p, c.pending)
			c.pending = c.pending[m:]
			if m > 0 {
				return m, nil
			}
			return 0, err
		}
	}
}

// FixRequestLine rewrites the request line at the start of data when its
// target is not a valid URL (see RequestLineListener); anything else is
// returned unchanged.
func FixRequestLine(data []byte) []byte {
	end := bytes.IndexByte(data, '\n')
	if end < 0 {
		return data
	}
	line := bytes.TrimSuffix(data[:end], []byte("\r"))
	parts := bytes.Split(line, []byte(" "))
	if len(parts) != 3 || !bytes.HasPrefix(parts[2], []byte("HTTP/1.")) || len(parts[1]) == 0 || parts[1][0] != '/' {
		return data
	}
	if _, err := url.ParseRequestURI(string(parts[1])); err == nil {
		return data
	}
	var out bytes.Buffer
	out.Write(parts[0])
	out.WriteString(" " + MalformedURLPath + "?target=" + url.QueryEscape(string(parts[1])) + " ")
	out.Write(parts[2])
	out.WriteString("\r\n")
	out.Write(data[end+1:])
	return out.Bytes()
}
