//! Chat messages: a role and content parts (text and images), as every chat API and template sees them.

use serde::{Deserialize, Serialize};

/// Who speaks in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One piece of a message's content.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text {
        text: String,
    },
    /// An image, either an `http(s)://` URL or a `data:` URL carrying the bytes.
    Image {
        url: String,
        /// Where the image came from in the suite (a path or URL), kept for reports;
        /// the bytes themselves are only in `url`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
}

/// A chat message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Vec<ContentPart>,
}

impl Message {
    pub fn text(role: Role, text: impl Into<String>) -> Message {
        Message {
            role,
            content: vec![ContentPart::Text { text: text.into() }],
        }
    }

    pub fn system(text: impl Into<String>) -> Message {
        Message::text(Role::System, text)
    }

    pub fn user(text: impl Into<String>) -> Message {
        Message::text(Role::User, text)
    }

    pub fn assistant(text: impl Into<String>) -> Message {
        Message::text(Role::Assistant, text)
    }

    /// The text parts joined together; images are left out.
    pub fn text_content(&self) -> String {
        let mut out = String::new();
        for part in &self.content {
            if let ContentPart::Text { text } = part {
                out.push_str(text);
            }
        }
        out
    }

    pub fn has_images(&self) -> bool {
        self.content
            .iter()
            .any(|part| matches!(part, ContentPart::Image { .. }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_content_skips_images() {
        let message = Message {
            role: Role::User,
            content: vec![
                ContentPart::Text { text: "a ".into() },
                ContentPart::Image {
                    url: "data:image/png;base64,AA==".into(),
                    source: None,
                },
                ContentPart::Text { text: "b".into() },
            ],
        };
        assert_eq!(message.text_content(), "a b");
        assert!(message.has_images());
        assert!(!Message::user("x").has_images());
    }

    #[test]
    fn serializes_with_type_tags() {
        let json = serde_json::to_string(&Message::user("hi")).unwrap();
        assert_eq!(
            json,
            r#"{"role":"user","content":[{"type":"text","text":"hi"}]}"#
        );
    }
}
