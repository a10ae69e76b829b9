#!/bin/sh
# NoCloud user-data used by the end-to-end tests.
echo "kce2e-user-data-ran"
