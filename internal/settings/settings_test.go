package settings

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecode(t *testing.T) {
	var v struct {
		A int `json:"a"`
	}
	absent, err := Decode(nil, &v)
	require.True(t, absent)
	require.NoError(t, err)
	absent, _ = Decode([]byte(" null "), &v)
	require.True(t, absent)
	absent, err = Decode([]byte(`{"a":2}`), &v)
	require.False(t, absent)
	require.NoError(t, err)
	require.Equal(t, 2, v.A)
	_, err = Decode([]byte(`{"b":2}`), &v)
	require.Error(t, err, "unknown fields are refused")
}

func TestFraction(t *testing.T) {
	f := func(x float64) *float64 { return &x }
	require.NoError(t, Fraction("x", nil))
	require.NoError(t, Fraction("x", f(0.5)))
	require.ErrorContains(t, Fraction("x.y", f(1.5)), "x.y: must be between 0 and 1")
	require.Error(t, Fraction("x", f(math.NaN())))
}
