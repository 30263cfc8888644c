module example.com/clientmod

go 1.26.8

require github.com/batonhq/baton v0.0.0-00010101000000-000000000000

// This module builds against the checkout it lives in; a program of yours
// would require a released version of Baton instead.
replace github.com/batonhq/baton => ../..
