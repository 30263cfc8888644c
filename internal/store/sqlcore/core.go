package sqlcore

// Core implements the methods of store.Store whose logic is the same in
// every dialect, on the Dialect it was made with. A backend's Store embeds
// it and adds the rest: the claims (RunClaim, TaskRunClaim,
// TaskRunComplete, Claim), LeasesExtend and Close, whose best form differs
// per database. A Core is safe for concurrent use when its
// dialect is.
type Core struct {
	d  Dialect
	sx Syntax
}

// New returns the core of a backend.
func New(d Dialect, sx Syntax) *Core { return &Core{d: d, sx: sx} }
