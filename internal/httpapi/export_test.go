package httpapi

// RoutePatterns returns the pattern of every route in the permission
// table, for tests that must cover them all.
func RoutePatterns() []string {
	out := make([]string, len(routes))
	for i, rt := range routes {
		out[i] = rt.pattern
	}
	return out
}
