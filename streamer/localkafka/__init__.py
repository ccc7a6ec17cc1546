"""The local single-node KRaft broker (`streamer kafka start|stop|status`)."""
