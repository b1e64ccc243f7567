/**
 * Sets `now` to Redis's time in ms, at the start of a Lua script. Expiries
 * shared by the nodes are on this clock, never a node's: nodes whose clocks
 * disagree would otherwise expire, or keep, each other's live entries.
 */
export const REDIS_NOW_MS = `
local redisTime = redis.call('TIME')
local now = tonumber(redisTime[1]) * 1000 + math.floor(tonumber(redisTime[2]) / 1000)`;
