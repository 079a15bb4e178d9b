// Package nodesdk runs the official Azure IoT device SDK for Node.js from Go
// tests, so that hubkit's brokers are proven against what real devices send.
//
// The SDK versions are pinned in package.json and package-lock.json beside
// this file. [Ensure] installs them with npm ci when node_modules is
// missing; tests never skip for want of them. The JavaScript programs the
// tests run live here too: device.js plays one device from a JSON plan.
package nodesdk
