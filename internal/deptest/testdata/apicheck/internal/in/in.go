// Package in is an internal package whose type the public package leaks.
package in

// T is an internal type.
type T struct{ N int }
