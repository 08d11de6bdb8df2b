# Sourced by the demo scripts. Colour only when stdout is a terminal and NO_COLOR (no-color.org) is unset or empty:
# the escape sequences for headings, and the flags that make ip and jq (1.6 ignores NO_COLOR) follow the same choice.
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  c_head=$'\e[1;36m'; c_ok=$'\e[1;32m'; c_err=$'\e[1;31m'; c_dim=$'\e[2m'; c_off=$'\e[0m'; ip_colour=-c=always; jq_colour=-C
else
  c_head=; c_ok=; c_err=; c_dim=; c_off=; ip_colour=-c=never; jq_colour=-M
fi
