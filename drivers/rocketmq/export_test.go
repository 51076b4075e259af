package rocketmq

// ReplyMessage exposes replyMessage to the tests.
var ReplyMessage = replyMessage

// RequestTTL exposes requestTTL to the tests.
var RequestTTL = requestTTL
