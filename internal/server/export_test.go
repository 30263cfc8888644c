package server

import "context"

// FlowCacheTTL is flowCacheTTL, for tests that move a fake clock past it.
const FlowCacheTTL = flowCacheTTL

// FallBack runs the fallback step of the maintenance pass now.
func (s *Server) FallBack(ctx context.Context) { s.fallBack(ctx) }
