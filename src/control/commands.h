/*
 * This file contains the commands main() dispatches to. Each takes argv with
 * argv[0] = the command name, prints its own --help, and returns an exit code
 * (control/cli.h).
 */
#ifndef CW_CONTROL_COMMANDS_H
#define CW_CONTROL_COMMANDS_H

int cw_cmd_run(int argc, char **argv);
int cw_cmd_migrate(int argc, char **argv);
int cw_cmd_entity(int argc, char **argv);
int cw_cmd_status(int argc, char **argv);
int cw_cmd_config(int argc, char **argv);
int cw_cmd_verify(int argc, char **argv);
int cw_cmd_deadletter(int argc, char **argv);

#endif
