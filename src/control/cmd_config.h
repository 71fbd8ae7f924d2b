/*
 * This file contains `cachewarp config`: check a configuration file, show the
 * effective configuration with secrets masked, or print the reference
 * (docs/configuration.md) generated from the key table.
 */
#ifndef CW_CONTROL_CMD_CONFIG_H
#define CW_CONTROL_CMD_CONFIG_H

/*
 * argv[0] is "config", argv[1] the subcommand: check, show or reference.
 * Returns CW_EXIT_OK, CW_EXIT_FAILURE or CW_EXIT_USAGE (control/cli.h): a
 * configuration error is a usage error (2). Reads the process environment
 * for CACHEWARP_* overrides and CACHEWARP_CONFIG.
 */
int cw_cmd_config(int argc, char **argv);

#endif
