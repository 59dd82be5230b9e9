<?php
// A chat room behind wssgate's `http` route, with no WebSocket library and no long-lived
// process: every WebSocket event arrives as a POST, and the answer lists commands for the
// gateway (docs/http-backend.md). Run it with `php -S 127.0.0.1:9000 chat.php`.
$event = $_SERVER['HTTP_WSSGATE_EVENT'] ?? '';
$user = $_SERVER['HTTP_WSSGATE_USER'] ?? 'guest';
header('Content-Type: application/json');

// Everyone in the room gets every line: a publish to the topic the connections subscribe to.
function say(array $line): array
{
    return ['op' => 'publish', 'topic' => 'chat', 'text' => json_encode($line)];
}

// The name comes from the WebSocket URL: wss://host/chat?name=alice
function name_from_url(): string
{
    parse_str(parse_url($_SERVER['HTTP_WSSGATE_PATH'] ?? '', PHP_URL_QUERY) ?? '', $query);
    $name = preg_replace('/[^\w .-]/u', '', (string) ($query['name'] ?? ''));
    return $name === '' ? 'guest' : $name;
}

$body = file_get_contents('php://input');
switch ($event) {
    case 'open':
        $name = name_from_url();
        echo json_encode([
            ['op' => 'identify', 'user' => $name],
            ['op' => 'subscribe', 'topic' => 'chat'],
            say(['type' => 'join', 'name' => $name, 'pid' => getmypid()]),
        ]);
        break;
    case 'message':   // one message: the body is its text
    case 'messages':  // several that waited: [{"text": ...}, ...]
        $texts = $event === 'message' ? [$body] : array_column(json_decode($body, true), 'text');
        $lines = [];
        foreach ($texts as $text) {
            $lines[] = say(['type' => 'message', 'name' => $user, 'text' => $text, 'pid' => getmypid()]);
        }
        echo json_encode($lines);
        break;
    case 'close':
        echo json_encode([say(['type' => 'leave', 'name' => $user])]);
        break;
    default:
        http_response_code(400);
        echo json_encode(['error' => 'not a wssgate event']);
}
