/* SPDX-License-Identifier: Apache-2.0 */
/* kvmcloud - the command-line client of the kvmcloud REST API. */
#include "cli.h"

int main(int argc, char **argv)
{
	return kc_cli_main(argc, argv);
}
