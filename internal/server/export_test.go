package server

// FlowCacheTTL is flowCacheTTL, for tests that move a fake clock past it.
const FlowCacheTTL = flowCacheTTL
