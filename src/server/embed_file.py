#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes a C file defining `const char NAME[]` (NUL-terminated) and
`const size_t NAME_len` with the bytes of INPUT, so that the server can
serve a static document without reading files at run time."""
import sys

name, src, dst = sys.argv[1:4]
data = open(src, 'rb').read()
with open(dst, 'w') as out:
    out.write('/* SPDX-License-Identifier: Apache-2.0 */\n')
    out.write('/* Generated from %s by embed_file.py; do not edit. */\n' % src.split('/')[-1])
    out.write('#include <stddef.h>\n')
    out.write('extern const char %s[];\nextern const size_t %s_len;\n' % (name, name))
    out.write('const char %s[] = {\n' % name)
    for i in range(0, len(data), 16):
        out.write('\t' + ', '.join('0x%02x' % b for b in data[i:i + 16]) + ',\n')
    out.write('\t0x00\n};\n')
    out.write('const size_t %s_len = %d;\n' % (name, len(data)))
