package main

import (
	"net"
	"os"
)

// sdNotify sends a state line to systemd when dnslb runs as a Type=notify
// service (NOTIFY_SOCKET is set): "READY=1" once serving,
// "RELOADING=1\nMONOTONIC_USEC=..." when a reload starts, "READY=1" again
// when it ends (applied or refused), "STOPPING=1" at shutdown. Without
// NOTIFY_SOCKET it does nothing. A failure is not fatal: it is returned
// for the log.
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' { // abstract socket
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}
