package main

import (
	"slices"
	"testing"
)

func TestParseCounts(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{in: "10k,100k,1M", want: []int{10000, 100000, 1000000}},
		{in: "500, 2k", want: []int{500, 2000}},
		{in: "3M", want: []int{3000000}},
		{in: "", wantErr: true},
		{in: "0", wantErr: true},
		{in: "-5k", wantErr: true},
		{in: "1G", wantErr: true},
		{in: "10k,", wantErr: true},
		{in: "9999M", wantErr: true},
	} {
		got, err := parseCounts(tc.in)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("parseCounts(%q) = %v, %v; want %v (error: %v)", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
