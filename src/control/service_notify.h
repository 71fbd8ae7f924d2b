/*
 * This file contains the service manager notifications: under systemd with
 * Type=notify, the daemon says READY=1 once its components run and the API
 * listens, and STOPPING=1 when shutdown starts. It speaks the sd_notify
 * datagram protocol itself (a line of text to the unix socket named by
 * $NOTIFY_SOCKET, a path or an abstract name starting with '@'), so no
 * library is needed; without $NOTIFY_SOCKET it does nothing.
 *
 * THREAD SAFETY: may be called from any thread.
 */
#ifndef CW_CONTROL_SERVICE_NOTIFY_H
#define CW_CONTROL_SERVICE_NOTIFY_H

/*
 * Sends state (such as "READY=1\nSTATUS=running") to the service manager.
 * Returns 0 when sent or when there is no $NOTIFY_SOCKET, -1 when the socket
 * could not be reached (the daemon carries on: a notification is a courtesy).
 */
int cw_service_notify(const char *state);

#endif
